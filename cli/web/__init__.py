"""`procctl ui`: a local web view of a home's instances (the `ui` extra: Starlette and
uvicorn).

app.py builds the application, security.py guards every request (token, origin,
loopback only, headers), events.py streams instance changes; the pages, the actions
and the graph are in modules of their own. Nothing here is imported unless `procctl ui`
runs.
"""
