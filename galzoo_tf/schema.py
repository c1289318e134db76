"""Decision trees as data: questions, answers, what leads where, and catalogue column names.

A tree lives in ``galzoo_tf/trees/<name>.json``; adding a survey's tree (GZ DECaLS,
Euclid) means adding a JSON file, not touching code. Every other module asks the
``Schema`` object for names and structure instead of hard-coding GZ2.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import read_json

BAD_TREE = "bad tree"


class SchemaError(BadInputError):
    """A tree file is malformed (not JSON, a missing field, unknown target question, duplicate names, ...)."""

    def __init__(self, message: str) -> None:
        super().__init__(BAD_TREE, message)

    def __reduce__(self):
        return (type(self), (self.message,))


@dataclass(frozen=True)
class Answer:
    """One answer of a question: its short name, catalogue stem and Kaggle class name."""

    name: str
    stem: str
    kaggle: str | None
    leads_to: str | None
    question: str
    perceived: str | None = None  # which answer of the question's simulated perception this is (default: its name)

    @property
    def key(self) -> str:
        """Record key prefix, e.g. ``bar/no_bar``."""
        return f"{self.question}/{self.name}"


@dataclass(frozen=True)
class Question:
    """One question of the tree with its answers, typical N and optional total column."""

    name: str
    task: str
    stem: str
    text: str
    expected_votes: int
    answers: tuple[Answer, ...]
    total_column: str | None = None
    zoom: tuple[float, float] = (1.1, 1.3)  # augmentation crop zoom range (Walmsley et al. 2019 §2.5.3)
    central_crop: bool = False  # crop at the centre (bar) rather than at a random position (smooth)
    min_votes: int = 1  # training's default cut on N (Walmsley et al. 2019 train bar on N >= 10)
    kaggle_weighted: bool = True  # the Kaggle release scales its fractions by the fraction reaching it (GZ2 odd: not)
    perception: str | None = None  # how simulated volunteers perceive it (galzoo_tf.sim.perception; default: its name)

    @property
    def answer_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.answers)

    def answer(self, name: str) -> Answer:
        for answer in self.answers:
            if answer.name == name:
                return answer
        raise KeyError(f"question {self.name!r} has no answer {name!r}; answers: {self.answer_names}")


@dataclass(frozen=True)
class Schema:
    """A decision tree: its questions in order, the root, and catalogue column patterns."""

    name: str
    title: str
    root: str
    questions: tuple[Question, ...]
    id_column: str
    count_pattern: str
    fraction_pattern: str | None = None  # catalogue column of an answer's vote fraction, e.g. "{stem}_fraction"
    note: str = ""  # where the tree comes from, and what could not be checked against a primary source

    @property
    def question_names(self) -> tuple[str, ...]:
        return tuple(q.name for q in self.questions)

    @property
    def answers(self) -> tuple[Answer, ...]:
        """All answers of all questions, in tree order."""
        return tuple(a for q in self.questions for a in q.answers)

    def question(self, name: str) -> Question:
        for question in self.questions:
            if name in (question.name, question.task, question.stem):
                return question
        raise KeyError(f"schema {self.name!r} has no question {name!r}; questions: {', '.join(self.question_names)}")

    def to_json(self) -> dict:
        """The tree as a tree file holds it (``_build`` reads it back to an equal Schema)."""
        return {"name": self.name, "title": self.title, "root": self.root, "note": self.note,
                "columns": {"id": self.id_column, "count": self.count_pattern, "fraction": self.fraction_pattern},
                "questions": [{"name": q.name, "task": q.task, "stem": q.stem, "text": q.text,
                               "expected_votes": q.expected_votes, "total_column": q.total_column,
                               "zoom": list(q.zoom), "crop": "central" if q.central_crop else "random",
                               "min_votes": q.min_votes, "kaggle_weighted": q.kaggle_weighted,
                               "perception": q.perception,
                               "answers": [{"name": a.name, "stem": a.stem, "kaggle": a.kaggle,
                                            "leads_to": a.leads_to, "perceived": a.perceived} for a in q.answers]}
                              for q in self.questions]}

    def count_column(self, answer: Answer) -> str:
        """Catalogue column holding the vote count k of ``answer``."""
        return self.count_pattern.format(stem=answer.stem)

    def fraction_column(self, answer: Answer) -> str | None:
        """Catalogue column holding ``answer``'s fraction of its question's votes, if the tree names one."""
        return self.fraction_pattern.format(stem=answer.stem) if self.fraction_pattern else None

    def parents(self, question: str) -> tuple[Answer, ...]:
        """Answers that lead to ``question`` (empty for the root)."""
        return tuple(a for a in self.answers if a.leads_to == question)

    def ancestors(self, question: str) -> frozenset[str]:
        """Questions on some path from the root to ``question`` (not itself): those a volunteer answers first."""
        found, frontier = set(), [question]
        while frontier:
            for answer in self.parents(frontier.pop()):
                if answer.question not in found:
                    found.add(answer.question)
                    frontier.append(answer.question)
        return frozenset(found)

    def topological_order(self) -> tuple[Question, ...]:
        """Questions ordered so that every question comes after all questions that lead to it."""
        indegree = {q.name: len({a.question for a in self.parents(q.name)}) for q in self.questions}
        ready = [q.name for q in self.questions if indegree[q.name] == 0]
        order: list[Question] = []
        while ready:
            question = self.question(ready.pop(0))
            order.append(question)
            for target in dict.fromkeys(a.leads_to for a in question.answers if a.leads_to):
                indegree[target] -= 1
                if indegree[target] == 0:
                    ready.append(target)
        if len(order) != len(self.questions):
            raise SchemaError(f"{self.name}: the tree has a cycle")
        return tuple(order)

    def count_key(self, answer: Answer) -> str:
        """TFRecord feature name of an answer's vote count."""
        return f"{answer.key}/count"

    def total_key(self, question: Question) -> str:
        """TFRecord feature name of a question's total number of votes N."""
        return f"{question.name}/total"


def _build(raw: dict) -> Schema:
    columns = raw.get("columns", {})
    questions = []
    for q in raw["questions"]:
        answers = tuple(Answer(a["name"], a["stem"], a.get("kaggle"), a.get("leads_to"), q["name"], a.get("perceived"))
                        for a in q["answers"])
        stem = q.get("stem", q["name"])
        total = q.get("total_column") or (columns["total"].format(stem=stem) if columns.get("total") else None)
        questions.append(
            Question(q["name"], q.get("task", q["name"]), stem, q.get("text", ""),
                     int(q.get("expected_votes", 0)), answers, total,
                     tuple(q.get("zoom", (1.1, 1.3))), q.get("crop", "random") == "central",
                     int(q.get("min_votes", 1)), bool(q.get("kaggle_weighted", True)), q.get("perception"))
        )
    schema = Schema(raw["name"], raw.get("title", raw["name"]), raw["root"], tuple(questions),
                    columns.get("id", "id"), columns.get("count", "{stem}_count"), columns.get("fraction"),
                    raw.get("note", ""))
    validate(schema)
    return schema


def validate(schema: Schema) -> None:
    """Check names are unique, every ``leads_to`` exists, and every question is reachable from the root."""
    names = schema.question_names
    if len(set(names)) != len(names):
        raise SchemaError(f"{schema.name}: duplicate question names")
    stems = [a.stem for a in schema.answers]
    if len(set(stems)) != len(stems):
        raise SchemaError(f"{schema.name}: duplicate answer stems")
    for question in schema.questions:
        if len(set(question.answer_names)) != len(question.answers) or not question.answers:
            raise SchemaError(f"{schema.name}: question {question.name!r} needs distinct answers")
        for answer in question.answers:
            if answer.leads_to is not None and answer.leads_to not in names:
                raise SchemaError(f"{schema.name}: answer {answer.key!r} leads to unknown {answer.leads_to!r}")
    if schema.root not in names:
        raise SchemaError(f"{schema.name}: root {schema.root!r} is not a question")
    reached, frontier = {schema.root}, [schema.root]
    while frontier:
        for answer in schema.question(frontier.pop()).answers:
            if answer.leads_to and answer.leads_to not in reached:
                reached.add(answer.leads_to)
                frontier.append(answer.leads_to)
    unreachable = set(names) - reached
    if unreachable:
        raise SchemaError(f"{schema.name}: questions never asked: {sorted(unreachable)}")
    schema.topological_order()


def available_schemas() -> list[str]:
    """Names of the trees shipped with galzoo."""
    folder = resources.files("galzoo_tf") / "trees"
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def _user_tree(path: Path) -> Schema:
    """A user's tree file, every flaw in it one ``SchemaError`` naming the file."""
    raw = read_json(path)  # not JSON, or not an object: one line naming the file
    try:
        return _build(raw)
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc.message}") from None
    except KeyError as exc:
        raise SchemaError(f"{path}: a tree, question or answer lacks the field {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise SchemaError(f"{path}: not a galzoo tree ({exc}); see the shipped trees in galzoo_tf/trees") from None


YES_NO = ("yes", "no")


PLAIN_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")  # what may name a question made from a catalogue column


def binary_schema(column: str) -> Schema:
    """A one-question yes/no tree for a catalogue's 0/1 column (``--label-column``): one vote per galaxy, the label."""
    if not PLAIN_NAME.fullmatch(column):
        raise SchemaError(f"--label-column {column!r}: a question is named after the column, so use a column whose "
                          "name has only lower-case letters, digits, '_', '-' and '.'")
    answers = tuple(Answer(name, f"{column}_{name}", None, None, column) for name in YES_NO)
    question = Question(column, column, column, f"{column}? (the catalogue's 0/1 column {column!r})", 1, answers)
    schema = Schema(column, f"one yes/no question: the catalogue's column {column!r}", column, (question,), "id",
                    "{stem}_count", note="made by --label-column: 1 is yes, 0 is no, one vote per galaxy")
    validate(schema)
    return schema


def manifest_tree(schema: Schema) -> dict:
    """What a record manifest keeps of its tree: the name of a shipped tree, or a user's whole tree, so the
    records train anywhere without the tree file."""
    shipped = schema.name in available_schemas() and load_schema(schema.name) == schema
    return {"schema": schema.name} if shipped else {"schema": schema.name, "tree": schema.to_json()}


def schema_of(manifest: dict) -> Schema:
    """The tree of a record folder (its manifest), shipped or the user's."""
    return _build(manifest["tree"]) if "tree" in manifest else load_schema(manifest["schema"])


@cache
def load_schema(name_or_path: str = "gz2") -> Schema:
    """Load a shipped tree by name (``gz2``) or a user's tree from a JSON file path."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.exists():
        return _user_tree(path)
    source = resources.files("galzoo_tf") / "trees" / f"{name_or_path}.json"
    if not source.is_file():
        raise SchemaError(f"unknown schema {name_or_path!r}; shipped: {', '.join(available_schemas())}, "
                          "or give the path of a tree .json file")
    return _build(json.loads(source.read_text()))
