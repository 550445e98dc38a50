"""Put this folder first on PYTHONPATH to run Python as if the HTTP stack (FastAPI,
Starlette, uvicorn, prometheus_client) were not installed: importing any of it raises
ImportError. The tests use it to prove that gRPC serving does not need it."""

import sys

HTTP_STACK = ("fastapi", "starlette", "uvicorn", "prometheus_client")


class _HttpStackBlocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HTTP_STACK:
            raise ImportError(f"{name} is not installed here (tests/python/no_http_stack)")
        return None


sys.meta_path.insert(0, _HttpStackBlocker())
