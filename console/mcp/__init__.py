"""The Model Context Protocol, both ways.

- `watchfloor mcp` (cli.py, server.py, tools.py): the console's read tools and `propose`
  for another assistant, every call audited with its caller; nothing executes through it.
- `mcp.yaml` (config.py, client.py): other MCP servers whose read-only tools the
  retriever and the investigator quote as evidence, never as instructions.

Only server.py and client.py import the `mcp` SDK, and only when they are used.
"""
