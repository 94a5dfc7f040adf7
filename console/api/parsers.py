"""Request bodies the console API refuses before any view sees them: JSON nested past what
Python's parser can follow, and NUL characters, which PostgreSQL cannot store in text or
jsonb (a 400 naming the field, where they would fail in the database)."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


def _name(path):
    return ".".join(str(part).replace("\x00", "\\u0000") for part in path)


def reject_nul(data):
    """Raise ParseError naming the first field whose name or value holds a NUL character."""
    pending = [((), data)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                where = f"The field '{_name(path)}'" if path else "The body"
                raise ParseError(f"{where} contains a NUL character (\\u0000); remove it.")
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in str(key):
                    raise ParseError(f"The field name '{_name((*path, key))}' contains a NUL character (\\u0000); remove it.")
                pending.append(((*path, key), item))
        elif isinstance(value, (list, tuple)):
            pending.extend(((*path, i), item) for i, item in enumerate(value))
        elif hasattr(value, "lists"):  # a QueryDict
            pending.extend(((*path, key), items) for key, items in value.lists())
    return data


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply; no field of this API nests more than a few levels.")
        return reject_nul(data)


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return reject_nul(super().parse(stream, media_type, parser_context))


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        reject_nul(parsed.data)
        return parsed


class RefuseMalformedInput:
    """For a console API view: the parsers above, and a NUL character in the URL's path
    parameters or query string refused with 400 before the view reads them."""

    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        for name, value in kwargs.items():
            if "\x00" in str(value):
                raise ParseError(f"The path parameter '{name}' contains a NUL character (%00); remove it.")
        for name, values in request.query_params.lists():
            if any("\x00" in v for v in [name, *values]):
                raise ParseError(f"The query parameter '{_name((name,))}' contains a NUL character (%00); remove it.")
