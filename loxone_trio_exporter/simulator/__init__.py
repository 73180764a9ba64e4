"""A simulated Loxone Miniserver that speaks the real protocol (for tests, demos, benchmarks).

Start it in a nursery: ``handle = await nursery.start(serve_simulator, SimulatorOptions(port=0))``;
``handle.servers[i].port`` tells where each simulated Miniserver listens. HTTP and the WebSocket
share that port, as on a real Miniserver.
"""

from ._accounts import Accounts, User, parse_user_spec
from ._cli import add_simulate_parser, run_simulate
from ._faults import Fault, FaultError, FaultKind, parse_fault
from ._generate import generate_structure
from ._model import SimulatedMiniserver
from ._server import SimulatedServer, SimulatorHandle, SimulatorOptions, serve_simulator

__all__ = [
    "Accounts",
    "Fault",
    "FaultError",
    "FaultKind",
    "SimulatedMiniserver",
    "SimulatedServer",
    "SimulatorHandle",
    "SimulatorOptions",
    "User",
    "add_simulate_parser",
    "generate_structure",
    "parse_fault",
    "parse_user_spec",
    "run_simulate",
    "serve_simulator",
]
