"""Decode + apply scenario: value tables through the protocol reader into the state owner.

Each value table arrives as the Miniserver frames it (an 8-byte header message, then the payload
message); ``MessageReader`` decodes it and ``StateOwner.apply`` stores every value for each owner
of its state, exactly as the exporter's connection and owner tasks do, without the sockets.
Tables of 1000 records are what 50k events/s look like from the simulator (it batches per 20 ms
tick); tables of 20 records are 1k events/s.
"""

from __future__ import annotations

import gc
import time

from loxone_trio_exporter.runtime._messages import TablesReceived

from ._pipeline import TABLE_EVENTS, Pipeline
from ._results import Figure, at_least, figure
from ._settings import Settings

SCENARIO = "decode+apply"
EVENTS_BUDGET = 500_000.0


def run(settings: Settings) -> list[Figure]:
    pipeline = Pipeline(settings.decode_series)
    figures = []
    for index, records in enumerate(settings.decode_records):
        tables = max(1, settings.decode_events // records)
        rates = [_events_per_second(pipeline, tables, records) for _ in range(settings.runs)]
        figures.append(
            figure(
                SCENARIO,
                f"value tables of {records} records, {pipeline.value_series:,} value series",
                "events/s",
                rates,
                at_least(EVENTS_BUDGET) if index == 0 else None,
                note=f"{tables * records:,} events per run",
            )
        )
    return figures


def _events_per_second(pipeline: Pipeline, tables: int, records: int) -> float:
    # Encoded before the clock starts: the Miniserver's work, not the exporter's.
    work = [
        (pipeline.reader(name), name, messages)
        for name, messages in pipeline.value_tables(tables, records)
    ]
    apply = pipeline.owner.apply
    gc.collect()
    start = time.perf_counter()
    for reader, name, messages in work:
        for message in messages:
            event = reader.receive(message)
            if isinstance(event, TABLE_EVENTS):
                apply(TablesReceived(name, event), 0.0)
    elapsed = time.perf_counter() - start
    return tables * records / elapsed
