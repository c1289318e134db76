"""`prepare gz2 --download` against a local HTTP server on 127.0.0.1 (no test touches the internet)."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from galzoo_cli.main import app
from galzoo_tf.data import records
from galzoo_tf.data.sources import download
from galzoo_tf.errors import BadInputError

from conftest import make_gz2


class FixtureServer:
    """Serves bytes by path with Range support; can drop a file's first transfer halfway."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_once: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
                if start >= len(body) and start:
                    self.send_error(416)
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if self.path in server.cut_once:
                    server.cut_once.discard(self.path)
                    self.wfile.write(body[start:start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FixtureServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def zenodo_path(name: str) -> str:
    return f"/records/3565489/files/{name}?download=1"


def publish_gz2(server: FixtureServer, fixture, md5_override: dict | None = None) -> None:
    """Serve a GZ2 fixture under the public files' names and layout, with a Zenodo record JSON."""
    catalogue = io.BytesIO()
    fixture.frame.to_csv(catalogue, index=False, compression={"method": "gzip", "mtime": 0})
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        for image in sorted(fixture.images.glob("*.jpg")):
            bundle.write(image, f"images/{image.name}")
        bundle.writestr("../../escaped.jpg", b"not allowed outside the cache")
    zenodo = {"gz2_filename_mapping.csv": fixture.mapping.read_bytes(), "images_gz2.zip": archive.getvalue()}
    server.files["/gz2_hart16.csv.gz"] = catalogue.getvalue()
    for name, body in zenodo.items():
        server.files[zenodo_path(name)] = body
    md5s = {name: hashlib.md5(body).hexdigest() for name, body in zenodo.items()} | (md5_override or {})
    server.files["/api/records/3565489"] = json.dumps(
        {"files": [{"key": k, "checksum": f"md5:{v}", "size": len(zenodo[k])} for k, v in md5s.items()]}).encode()


def test_fetch_resumes_an_interrupted_transfer_with_a_range_request(tmp_path):
    body = bytes(range(256)) * 4000
    with FixtureServer() as server:
        server.files["/big.bin"] = body
        server.cut_once.add("/big.bin")
        info = download.fetch(f"{server.url}/big.bin", tmp_path / "big.bin", md5=hashlib.md5(body).hexdigest())
    assert (tmp_path / "big.bin").read_bytes() == body
    assert not (tmp_path / "big.bin.part").exists()
    ranges = [r for path, r in server.requests if path == "/big.bin"]
    assert ranges[0] is None and ranges[1] == f"bytes={len(body) // 2}-"
    assert info["sha256"] == hashlib.sha256(body).hexdigest()


def test_fetch_refuses_a_checksum_mismatch_and_removes_the_part(tmp_path):
    with FixtureServer() as server:
        server.files["/f.csv"] = b"a,b\n1,2\n"
        with pytest.raises(BadInputError, match="MD5 differs"):
            download.fetch(f"{server.url}/f.csv", tmp_path / "f.csv", md5="0" * 32)
    assert not (tmp_path / "f.csv").exists() and not (tmp_path / "f.csv.part").exists()


def test_fetch_reports_a_missing_file_and_keeps_nothing(tmp_path):
    with FixtureServer() as server, pytest.raises(BadInputError, match="404"):
        download.fetch(f"{server.url}/nothing", tmp_path / "nothing", retries=1)


def test_mirror_keeps_the_public_paths():
    assert download.with_mirror(download.ZENODO_FILE_URL.format(name="x.csv"), "http://127.0.0.1:9/m/") == \
        "http://127.0.0.1:9/m/records/3565489/files/x.csv?download=1"
    assert download.with_mirror(download.CATALOGUE_URL, None) == download.CATALOGUE_URL


def test_prepare_gz2_download_end_to_end(tmp_path):
    fixture = make_gz2(tmp_path / "gz2", n=12)
    cache, out = tmp_path / "cache", tmp_path / "records"
    args = ["prepare", "gz2", "--download", "--cache", str(cache), "--out", str(out), "--test-size", "2",
            "--min-votes", "smooth=0", "--workers", "0"]
    with FixtureServer() as server:
        publish_gz2(server, fixture)
        server.cut_once.add(zenodo_path("images_gz2.zip"))
        result = CliRunner().invoke(app, [*args, "--mirror", server.url])
        assert result.exit_code == 0, result.output
        first_round = len(server.requests)
        again = CliRunner().invoke(app, [*args, "--mirror", server.url])
        assert again.exit_code == 0 and "up to date" in again.output
        file_requests = [p for p, _ in server.requests[first_round:] if not p.startswith("/api/")]
        assert file_requests == []  # finished, verified files are not fetched again
    got = {x["id"].numpy().decode(): int(x["smooth/features/count"]) for x in records.read_records(out)}
    featured = fixture.frame["t01_smooth_or_features_a02_features_or_disk_count"]
    assert got == dict(zip(fixture.frame["dr7objid"], featured, strict=True))
    log = json.loads((cache / "downloads.json").read_text())["files"]
    assert [entry["md5"] is not None for entry in log] == [False, True, True]
    assert not (tmp_path / "escaped.jpg").exists() and (cache / "images" / "escaped.jpg").exists()


def test_download_with_a_wrong_published_md5_fails_cleanly(tmp_path):
    fixture = make_gz2(tmp_path / "gz2", n=3)
    with FixtureServer() as server:
        publish_gz2(server, fixture, md5_override={"gz2_filename_mapping.csv": "f" * 32})
        result = CliRunner().invoke(app, ["prepare", "gz2", "--download", "--cache", str(tmp_path / "c"),
                                          "--mirror", server.url, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "gz2_filename_mapping.csv" in result.output and "MD5 differs" in result.output
