"""Log in to a (simulated) Miniserver with loxwebsocket (used by PyLoxone); print one JSON line.

Runs in its own virtual environment (asyncio and aiohttp stay out of the project's).
Usage: python loxwebsocket_probe.py PORT USER PASSWORD
"""

import asyncio
import json
import sys

from loxwebsocket import LoxWs


async def main(port: int, user: str, password: str) -> dict:
    client = LoxWs()
    tables: dict[str, int] = {}

    async def on_message(message, message_type):
        tables[str(message_type)] = tables.get(str(message_type), 0) + 1

    client.add_message_callback(on_message, [2, 3])
    await asyncio.wait_for(client.connect(user, password, f"http://127.0.0.1:{port}"), 20)
    await asyncio.sleep(3)
    state = client.state
    await client.stop()
    return {"state": state, "tables": tables}


if __name__ == "__main__":
    port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    print(json.dumps(asyncio.run(main(port, user, password))))
