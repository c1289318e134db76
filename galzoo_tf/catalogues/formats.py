"""Posterior catalogues written in bounded memory, atomically, and resumable: FITS, CSV or Parquet.

Rows arrive a batch at a time and are flushed as numbered FITS parts in a hidden folder
beside the output (``.CAT.partial/``, with a state file saying how much input they cover).
An interrupted run resumes after the last part. When the input is exhausted the parts are
streamed, one at a time, into the output format chosen by the file's extension, written to
a temporary file and renamed over the output; the folder is then removed.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import changed_keys, read_json, remove_stale_temporaries, replaced_atomically, write_json_atomic

FORMATS = {".fits": "fits", ".fit": "fits", ".csv": "csv", ".parquet": "parquet"}
STATE = "state.json"
SETTINGS = "_dataset.json"  # a partitioned catalogue's folder: the options its parts were written with
PROVENANCE = "_catalogue.json"  # a partitioned catalogue's folder: written when every part is there
FITS_BLOCK = 2880


def catalogue_format(path: Path) -> str:
    """fits, csv or parquet from the extension; anything else is a clear error."""
    kind = FORMATS.get(Path(path).suffix.lower())
    if kind is None:
        raise BadInputError("bad option", f"{path}: catalogue extension must be one of {', '.join(FORMATS)}")
    return kind


def _strings(column: np.ndarray) -> np.ndarray:
    return np.char.decode(column) if column.dtype.kind == "S" else column


def read_part(path: Path) -> Table:
    """One part of a catalogue: a FITS part of a running prediction, or a Parquet part of a partitioned one."""
    if path.suffix == ".parquet":
        return _parquet_table(path)
    table = Table.read(path, format="fits", character_as_bytes=False)
    table.meta.clear()
    return table


def _parquet_table(path: Path) -> Table:
    """A Parquet part as an astropy table (array columns back to 2-D arrays)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pq.read_table(path)
    columns = {}
    for name, column in zip(arrow.column_names, arrow.columns, strict=True):
        column = column.combine_chunks()
        if pa.types.is_fixed_size_list(column.type):
            columns[name] = column.flatten().to_numpy().reshape(len(column), column.type.list_size)
        else:
            columns[name] = column.to_numpy(zero_copy_only=False)
            if columns[name].dtype == object:
                columns[name] = columns[name].astype(str)
    return Table(columns)


def part_rows(path: Path) -> int:
    """Rows of a part, from its header or footer (nothing else is read)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_metadata(path).num_rows
    return fits.getval(path, "NAXIS2", ext=1)


def write_parquet_part(columns: dict[str, np.ndarray], path: Path, meta: dict) -> None:
    """One Parquet file of ``columns`` with ``meta`` as JSON in its schema metadata (``galzoo`` key)."""
    import pyarrow.parquet as pq

    table = _arrow_table(Table(columns))
    pq.write_table(table.replace_schema_metadata({"galzoo": json.dumps(meta)}), path)


def part_metadata(path: Path) -> dict:
    """The ``galzoo`` metadata a Parquet part was written with."""
    import pyarrow.parquet as pq

    return json.loads(pq.read_schema(path).metadata[b"galzoo"])


def write_catalogue(parts: list[Path], path: Path, meta: dict) -> None:
    """Parts (FITS or Parquet) streamed into one catalogue at ``path`` in the format of its extension."""
    {"fits": write_fits, "csv": write_csv, "parquet": write_parquet}[catalogue_format(path)](parts, path, meta)



def provenance_path(path: Path) -> Path:
    """The provenance JSON written beside a catalogue or list file (``NAME.json``)."""
    return Path(path).with_name(Path(path).name + ".json")

class PartialCatalogue:
    """The rows an unfinished prediction has written, and how many input galaxies they cover."""

    def __init__(self, out: Path, settings: dict, resume: bool = False, overwrite: bool = False) -> None:
        self.out, self.kind, self.settings = Path(out), catalogue_format(out), settings
        self.folder = self.out.with_name(f".{self.out.name}.partial")
        if self.folder.exists() and not resume:
            if not overwrite:
                raise BadInputError("unfinished output", f"{self.out}: an interrupted run left {self.folder}; "
                                                         "pass --resume to continue it or --overwrite to restart")
            shutil.rmtree(self.folder)
        if self.out.exists() and not (resume or overwrite):
            raise BadInputError("output exists", f"{self.out} exists; pass --overwrite to replace it")
        remove_stale_temporaries(self.folder)  # parts a killed run was writing
        self.state = self._load_state() if resume and self.folder.exists() else \
            {"settings": settings, "parts": [], "rows": 0, "consumed": 0}
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.folder / STATE, self.state)

    def _load_state(self) -> dict:
        state = read_json(self.folder / STATE)
        changed = changed_keys(state["settings"], self.settings)
        if changed:
            raise BadInputError("resume mismatch", f"{self.out}: cannot resume, the interrupted run used other "
                                                   f"{', '.join(changed)}; use the same options or --overwrite")
        return state

    @property
    def consumed(self) -> int:
        """Input galaxies already covered by written rows (bad images skipped included)."""
        return self.state["consumed"]

    @property
    def rows(self) -> int:
        return self.state["rows"]

    def add(self, columns: dict[str, np.ndarray], consumed: int) -> None:
        """Write one part atomically, then record it: a crash between the two only repeats this part."""
        name = f"part-{len(self.state['parts']):06d}.fits"
        with replaced_atomically(self.folder / name) as temporary:
            Table(columns).write(temporary, format="fits", overwrite=True)
        rows = len(next(iter(columns.values())))
        self.state = {**self.state, "parts": [*self.state["parts"], name], "rows": self.rows + rows,
                      "consumed": self.consumed + consumed}
        write_json_atomic(self.folder / STATE, self.state)

    def parts(self) -> list[Path]:
        return [self.folder / name for name in self.state["parts"]]

    def finish(self, meta: dict) -> Path:
        """Assemble the parts into the output file (atomically) and remove the partial folder."""
        if not self.rows:
            raise BadInputError("no galaxies", f"{self.out}: no galaxy was predicted, nothing to write")
        with replaced_atomically(self.out, self.out.suffix) as temporary:
            write_catalogue(self.parts(), temporary, meta)
        shutil.rmtree(self.folder)
        return self.out


def string_widths(parts: list[Path]) -> dict[str, int]:
    """Widest value of every string column across all parts (FITS needs one fixed width)."""
    widths: dict[str, int] = {}
    for part in parts:
        for name, column in read_part(part).columns.items():
            if column.dtype.kind in "SU":
                widths[name] = max(widths.get(name, 1), int(np.char.str_len(_strings(column.data)).max(initial=1)))
    return widths


def _fixed(table: Table, widths: dict[str, int]) -> fits.BinTableHDU:
    for name, width in widths.items():
        table[name] = np.asarray(_strings(table[name].data), dtype=f"U{width}")
    return fits.BinTableHDU(table)


def _table_bytes(hdu: fits.BinTableHDU) -> bytes:
    """The data block of a binary table HDU as FITS stores it (big-endian rows, no padding)."""
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    size = hdu.header["NAXIS1"] * hdu.header["NAXIS2"]
    padded = -(-size // FITS_BLOCK) * FITS_BLOCK
    return buffer.getvalue()[-padded:][:size]


def write_fits(parts: list[Path], path: Path, meta: dict) -> None:
    """Primary header with ``meta`` keywords, then one binary table sized for every row, streamed part by part."""
    widths = string_widths(parts)
    total = sum(part_rows(part) for part in parts)
    header = _fixed(read_part(parts[0]), widths).header.copy()
    header["NAXIS2"] = total
    header["EXTNAME"] = "POSTERIOR"
    primary = fits.PrimaryHDU()
    for key, value in meta.items():  # FITS keywords: at most 8 characters, values of at most 68
        primary.header[key.upper()] = value
    with open(path, "wb") as handle:
        primary.writeto(handle)
        handle.write(header.tostring().encode("ascii"))
        written = 0
        for part in parts:
            data = _table_bytes(_fixed(read_part(part), widths))
            handle.write(data)
            written += len(data)
        handle.write(b"\0" * (-written % FITS_BLOCK))


def _csv_frame(table: Table):
    """Array columns (the rho samples) become space-separated text: CSV has one value per cell."""
    import pandas as pd

    return pd.DataFrame({name: [" ".join(f"{v:.6g}" for v in row) for row in column] if column.ndim > 1 else
                         _strings(np.asarray(column)) for name, column in table.columns.items()})


def write_csv(parts: list[Path], path: Path, meta: dict) -> None:
    with open(path, "w", newline="") as handle:
        for index, part in enumerate(parts):
            _csv_frame(read_part(part)).to_csv(handle, header=index == 0, index=False, float_format="%.6g")


def _arrow_table(table: Table):
    import pyarrow as pa

    arrays = {}
    for name, column in table.columns.items():
        values = _strings(np.asarray(column))
        values = values.astype(values.dtype.newbyteorder("=")) if values.dtype.kind in "iuf" else values
        arrays[name] = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1]) \
            if values.ndim > 1 else pa.array(values)
    return pa.table(arrays)


def write_parquet(parts: list[Path], path: Path, meta: dict) -> None:
    import pyarrow.parquet as pq

    writer = None
    try:
        for part in parts:
            table = _arrow_table(read_part(part))
            if writer is None:
                schema = table.schema.with_metadata({"galzoo": json.dumps(meta)})
                writer = pq.ParquetWriter(path, schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
