"""A study's results in SQLite (WAL mode): the runs, each with its configuration, and one row per text and layer,
written as each batch finishes, so that a study that stops (killed, out of time) resumes where it stopped.

Only the process that plans the study writes here (Dask workers return rows to it). A run is identified by its
configuration (model file SHA-256, attnprox version, APE policy, layers, windowing, dtype, device kind, per-token
values): the same configuration resumes the run that has it; a different one is refused unless a new run is asked
for, and then both runs stay in the store, keyed by run id.

Tables:
    runs           run_id, created, config (JSON, what identifies the run), about (JSON: model path, family, ...)
    texts          run_id, text_id, layer, grp, match, text_sha256, n, windows, ap, ape, ape_normalized,
                   ape_undefined_rows, mean_entropy, mean_normalized_entropy, error
    token_values   run_id, text_id, layer, tokens, ap_tokens, ape_tokens (JSON arrays; runs with per-token values)
    quality        run_id, item, grp, match, reason: what the last session's quality control left out
    sessions       run_id, started, finished, texts_scored, wall_seconds (of which start_seconds: starting workers
                   and loading the model, scoring_seconds: scoring), workers, machine: each time the study ran
"""
import csv
import datetime
import json
import os
import platform
import sqlite3
from typing import Dict, Iterable, List, Sequence

from ..errors import InvalidArgumentError
from ..files import replacing

SCHEMA_VERSION = 1

COLUMNS = ("text_id", "grp", "match", "layer", "n", "windows", "ap", "ape", "ape_normalized", "ape_undefined_rows",
           "mean_entropy", "mean_normalized_entropy", "error", "text_sha256")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY, created TEXT NOT NULL, config TEXT NOT NULL UNIQUE, about TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS texts (
    run_id INTEGER NOT NULL REFERENCES runs(run_id), text_id TEXT NOT NULL, layer INTEGER NOT NULL,
    grp TEXT NOT NULL, match TEXT, text_sha256 TEXT NOT NULL,
    n INTEGER, windows INTEGER, ap REAL, ape REAL, ape_normalized REAL, ape_undefined_rows INTEGER,
    mean_entropy REAL, mean_normalized_entropy REAL, error TEXT,
    PRIMARY KEY (run_id, text_id, layer));
CREATE TABLE IF NOT EXISTS token_values (
    run_id INTEGER NOT NULL, text_id TEXT NOT NULL, layer INTEGER NOT NULL,
    tokens TEXT, ap_tokens TEXT NOT NULL, ape_tokens TEXT NOT NULL,
    PRIMARY KEY (run_id, text_id, layer));
CREATE TABLE IF NOT EXISTS quality (
    run_id INTEGER NOT NULL, item TEXT NOT NULL, grp TEXT, match TEXT, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    session_id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, started TEXT NOT NULL, finished TEXT,
    texts_scored INTEGER NOT NULL DEFAULT 0, wall_seconds REAL, start_seconds REAL, scoring_seconds REAL,
    workers TEXT, machine TEXT);
"""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def canonical(config: dict) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


class ConfigurationChanged(InvalidArgumentError):
    """The store's runs were made with another configuration than the one asked for."""


class Store:
    """An SQLite file of study runs."""

    def __init__(self, path: str):
        self.path = path
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # In WAL mode, NORMAL loses nothing when the process dies (only on power loss or an OS crash).
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            version = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError as e:
            raise InvalidArgumentError(f"study store {path} cannot be used: {e}") from None
        if version is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(version[0]) != SCHEMA_VERSION:
            raise InvalidArgumentError(f"study store {path} has schema version {version[0]}; this attnprox reads "
                                       f"version {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- runs ---------------------------------------------------------------------------------------------------

    def runs(self) -> List[dict]:
        return [{"run_id": r, "created": c, "config": json.loads(cfg), "about": json.loads(a)}
                for r, c, cfg, a in self._db.execute("SELECT run_id, created, config, about FROM runs ORDER BY run_id")]

    def open_run(self, config: dict, about: dict, new_run: bool = False) -> int:
        """The run with this configuration (resumed), or a new one: when the store is empty, or when `new_run` and
        no run has it. Raises ConfigurationChanged when runs of other configurations exist and no new run was
        asked for."""
        text = canonical(config)
        found = self._db.execute("SELECT run_id FROM runs WHERE config = ?", (text,)).fetchone()
        if found:
            return int(found[0])
        runs = self.runs()
        if runs and not new_run:
            last = runs[-1]
            changes = _differences(last["config"], config)
            raise ConfigurationChanged(
                f"the study store {self.path} holds run {last['run_id']} made with another configuration "
                f"({changes}); give --new-run (Python: new_run=True) to start a new run beside it, or write the "
                f"study elsewhere")
        cursor = self._db.execute("INSERT INTO runs (created, config, about) VALUES (?, ?, ?)",
                                  (_now(), text, json.dumps(about, sort_keys=True)))
        return int(cursor.lastrowid)

    def run(self, run_id: int) -> dict:
        for run in self.runs():
            if run["run_id"] == run_id:
                return run
        raise InvalidArgumentError(f"study store {self.path} has no run {run_id}")

    # -- rows ---------------------------------------------------------------------------------------------------

    def done(self, run_id: int) -> Dict[str, str]:
        """text_id → text_sha256 of the texts the run has scored: rows without an error (a text whose scoring failed
        is tried again)."""
        return dict(self._db.execute("SELECT text_id, MIN(text_sha256) FROM texts WHERE run_id = ? GROUP BY text_id "
                                     "HAVING SUM(error IS NOT NULL) = 0", (run_id,)))

    def forget(self, run_id: int, text_ids: Iterable[str]) -> None:
        """Removes the rows of texts (whose text changed since they were scored)."""
        with self._transaction():
            for ident in text_ids:
                self._db.execute("DELETE FROM texts WHERE run_id = ? AND text_id = ?", (run_id, ident))
                self._db.execute("DELETE FROM token_values WHERE run_id = ? AND text_id = ?", (run_id, ident))

    def write(self, run_id: int, rows: Sequence[dict]) -> None:
        """Writes the rows of one batch in one transaction (all or nothing)."""
        with self._transaction():
            for row in rows:
                self._db.execute(
                    f"INSERT OR REPLACE INTO texts (run_id, {', '.join(COLUMNS)}) VALUES (?{', ?' * len(COLUMNS)})",
                    (run_id, *[row.get(c) for c in COLUMNS]))
                if "ap_tokens" in row:
                    self._db.execute("INSERT OR REPLACE INTO token_values VALUES (?, ?, ?, ?, ?, ?)",
                                     (run_id, row["text_id"], row["layer"], json.dumps(row.get("tokens")),
                                      json.dumps(row["ap_tokens"]), json.dumps(row["ape_tokens"])))

    def rows(self, run_id: int, per_token: bool = False) -> List[dict]:
        """The run's rows, ordered by text id and layer."""
        cursor = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM texts WHERE run_id = ? ORDER BY text_id, layer",
                                  (run_id,))
        rows = [dict(zip(COLUMNS, values)) for values in cursor]
        if per_token:
            values = {(t, l): (tok, ap, ape) for t, l, tok, ap, ape in self._db.execute(
                "SELECT text_id, layer, tokens, ap_tokens, ape_tokens FROM token_values WHERE run_id = ?", (run_id,))}
            for row in rows:
                found = values.get((row["text_id"], row["layer"]))
                if found:
                    row["tokens"], row["ap_tokens"], row["ape_tokens"] = (json.loads(v) for v in found)
        return rows

    # -- quality control and sessions ---------------------------------------------------------------------------

    def set_quality(self, run_id: int, dropped: Sequence) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM quality WHERE run_id = ?", (run_id,))
            self._db.executemany("INSERT INTO quality VALUES (?, ?, ?, ?, ?)",
                                 [(run_id, d.id, d.group, d.match, d.reason) for d in dropped])

    def quality(self, run_id: int) -> List[dict]:
        return [{"item": i, "group": g, "match": m, "reason": r} for i, g, m, r in self._db.execute(
            "SELECT item, grp, match, reason FROM quality WHERE run_id = ? ORDER BY rowid", (run_id,))]

    def start_session(self, run_id: int, workers: str) -> int:
        cursor = self._db.execute("INSERT INTO sessions (run_id, started, workers, machine) VALUES (?, ?, ?, ?)",
                                  (run_id, _now(), workers, _machine()))
        return int(cursor.lastrowid)

    def end_session(self, session_id: int, texts_scored: int, wall_seconds: float, start_seconds: float,
                    scoring_seconds: float) -> None:
        self._db.execute("UPDATE sessions SET finished = ?, texts_scored = ?, wall_seconds = ?, start_seconds = ?, "
                         "scoring_seconds = ? WHERE session_id = ?",
                         (_now(), texts_scored, wall_seconds, start_seconds, scoring_seconds, session_id))

    def count_scored(self, session_id: int, texts: int) -> None:
        self._db.execute("UPDATE sessions SET texts_scored = texts_scored + ? WHERE session_id = ?",
                         (texts, session_id))

    def sessions(self, run_id: int) -> List[dict]:
        names = ("session_id", "started", "finished", "texts_scored", "wall_seconds", "start_seconds",
                 "scoring_seconds", "workers", "machine")
        return [dict(zip(names, r)) for r in self._db.execute(
            f"SELECT {', '.join(names)} FROM sessions WHERE run_id = ? ORDER BY session_id", (run_id,))]

    def _transaction(self):
        return _Transaction(self._db)

    # -- export -------------------------------------------------------------------------------------------------

    def export_csv(self, run_id: int, path: str) -> str:
        """The run's table (one row per text and layer; no per-token values) as CSV."""
        rows = self.rows(run_id)
        with replacing(path, "w", encoding="utf-8", newline="", inputs=[self.path]) as handle:
            writer = csv.writer(handle)
            writer.writerow(["text_id", "group", "match", *COLUMNS[3:]])
            for row in rows:
                writer.writerow(["" if row[c] is None else _csv_value(row[c]) for c in COLUMNS])
        return path

    def export_json(self, run_id: int, path: str) -> str:
        """The run (configuration, quality control, sessions) and its rows, per-token values included."""
        run = self.run(run_id)
        document = {"run_id": run_id, "created": run["created"], "config": run["config"], "about": run["about"],
                    "quality": self.quality(run_id), "sessions": self.sessions(run_id),
                    "texts": [dict(_renamed(row)) for row in self.rows(run_id, per_token=True)]}
        with replacing(path, "w", encoding="utf-8", inputs=[self.path]) as handle:
            json.dump(document, handle, ensure_ascii=False, indent=1)
        return path


def _renamed(row: dict):
    for key, value in row.items():
        yield ("group" if key == "grp" else key), value


def _csv_value(value):
    return repr(value) if isinstance(value, float) else value


class _Transaction:
    def __init__(self, db):
        self._db = db

    def __enter__(self):
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, traceback):
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


def _differences(old: dict, new: dict) -> str:
    keys = sorted(set(old) | set(new))
    changed = [f"{k}: {old.get(k)!r} there, {new.get(k)!r} asked" for k in keys if old.get(k) != new.get(k)]
    return "; ".join(changed) or "no difference found"


def _machine() -> str:
    return f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs)"
