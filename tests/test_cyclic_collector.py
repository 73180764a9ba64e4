"""What the cyclic garbage collector walks in a full collection (one step of the event loop).

A full collection walks every object the collector tracks; at 100 Miniservers of 1k controls
that took 80-134 ms (design 4: no step of the loop over 50 ms). Two things keep it short: a
layout's controls are plain tuples, which the collector stops tracking once it has seen them
(``ControlRecords``), and ``run`` freezes what exists once it serves (the imported stack), so
that no later collection walks it.
"""

from __future__ import annotations

import gc
from pathlib import Path

from test_import_baseline import report_of_run, write_config

from loxone_trio_exporter.simulator import SimulatedMiniserver
from loxone_trio_exporter.structure import ControlRecord, layout_structure


def test_a_layouts_controls_are_read_as_records_and_kept_untracked() -> None:
    model = SimulatedMiniserver.generate(40, seed=3)
    layout = layout_structure(model.structure_text())
    controls = layout.controls
    records = list(controls)
    assert len(records) == len(controls) >= 40
    assert all(isinstance(record, ControlRecord) for record in records)
    assert controls[3] == records[3]
    assert list(controls[2:5]) == records[2:5]
    assert controls[-1].name == records[-1].name
    subcontrol = next(record for record in records if record.parent >= 0)
    assert layout.parent_uuid(subcontrol) == controls[subcontrol.parent].uuid_action
    assert controls == layout_structure(model.structure_text()).controls

    gc.collect()
    kept = [row for row in controls._rows if gc.is_tracked(row)]
    assert not kept, "a control kept as an object the collector walks in every collection"


CHILD = """
import gc, json, logging, os, signal, sys, threading

def report():
    print(json.dumps({"frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects())}))
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGTERM)

class ReportAfterServing(logging.Filter):
    def filter(self, record):
        if " serving " in record.getMessage():
            # ``run`` freezes right after it serves: look a moment later, from another thread.
            threading.Timer(1.0, report).start()
        return True

logging.getLogger("loxone_trio_exporter").addFilter(ReportAfterServing())
from loxone_trio_exporter.cli import main
sys.exit(main(["run", sys.argv[1]]))
"""


def test_run_keeps_what_it_imported_out_of_later_collections(
    tmp_path: Path, refusing_port: int
) -> None:
    report = report_of_run(CHILD, write_config(tmp_path, refusing_port))
    # The imported stack (tens of thousands of functions, classes, dicts) is frozen; what a
    # full collection still walks is what the running exporter made since.
    assert report["frozen"] > 20_000
    assert report["tracked"] < report["frozen"]
