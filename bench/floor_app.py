"""The floor: the smallest WSGI application, served by the same gunicorn settings.

It reads the request body (as a real endpoint would) and answers 200 with a few bytes: what
is left is gunicorn's and Python's cost of one HTTP request, the ceiling for any Django view.
"""

BODY = b'{"hello": "world"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    length = environ.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length):
        environ["wsgi.input"].read(int(length))
    start_response("200 OK", HEADERS)
    return [BODY]
