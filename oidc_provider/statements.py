"""Prepared SQL for the rows every token request writes or reads.

The ORM builds each statement anew on every call: about 0.15 ms per INSERT and 0.3–0.6 ms
per SELECT with ``select_related`` on the benchmark machine, against some 0.03 ms to run
the statement. On the hot path (the tokens a grant writes; the token, with its user and
``sub``, that userinfo and introspection read; the code's Grant) that was most of a request.

Here each statement is built once per model and database from the models' ``_meta`` (so
swapped token and user models work), and each call only converts values, with the fields'
own ``pre_save``/``get_db_prep_save`` going in and the backend's and fields' converters and
``Model.from_db`` coming out, as the ORM does.

- ``insert(instance, durable=True)``: a new row. ``pre_save``/``post_save`` are still sent
  when anything listens. Models it cannot write this way (multi-table inheritance, a primary
  key that is not generated, database defaults) go through ``save()``. ``durable=False``, on
  PostgreSQL outside a transaction: the row's commit does not wait for the disk. When the
  request assumed config_cache's version (``config_cache.assuming()``), the INSERT writes
  its row only if that version still holds.
- ``first(model, field, value, related)``: the row whose ``field`` equals ``value``, or None,
  with the ``related`` chain joined and cached as ``select_related`` would.
- ``delete(model, cleared=(), **equals)``: rows nothing else points at (any more), in one DELETE.
- ``with Chain(model, **equals):``: a DELETE and the INSERTs made inside the block, the
  INSERTs only if the DELETE removed a row (a code exchange): one statement on PostgreSQL,
  one short transaction on SQLite. ``Chain.updating(...)`` has an UPDATE decide instead, and
  ``also_delete()`` adds DELETEs that follow it (a refresh token's rotation).
- ``read_first(connection, read)``: a request's first read, standing in for the
  ``CONN_HEALTH_CHECKS`` probe (used by ``first()`` and by config_cache's version read).
"""

from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, router, transaction
from django.db.models import DO_NOTHING, CharField, DateTimeField
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from . import config_cache

_statements = {}
_selects = {}
_deletes = {}
_chains = {}
_chain = ContextVar("statements_chain", default=None)


def _prepare(model, connection):
    meta = model._meta
    if meta.parents or not meta.auto_field or meta.pk is not meta.auto_field:
        return None
    fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
    if any(f.generated or f.has_db_default() for f in fields):
        return None
    qn = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        qn(meta.db_table), ", ".join(qn(f.column) for f in fields), ", ".join(["%s"] * len(fields))
    )
    returning = connection.features.can_return_columns_from_insert
    if returning:
        sql += f" RETURNING {qn(meta.pk.column)}"
    return fields, sql, returning


def _prepared(model, using):
    key = (model, using)
    if key not in _statements:
        _statements[key] = _prepare(model, connections[using])
    return _statements[key]


def _parameter_type(field, connection):
    """The type a parameter of an INSERT … SELECT is cast to: the column's, but a string's
    without its length, so that an over-long value is refused as VALUES would refuse it
    (an explicit cast to varchar(n) would cut it short)."""
    if isinstance(field, CharField):
        return connection.ops.cast_char_field_without_max_length
    return field.cast_db_type(connection)


def _conditional_insert_sql(model, using, prepared):
    """The model's INSERT as an INSERT … SELECT that writes its row only while config_cache's
    version is a given value (the last parameter); None where that cannot be said so (no
    RETURNING, another vendor, the version on another database)."""
    from .models import ConfigVersion

    key = ("if version", model, using)
    if key not in _statements:
        connection = connections[using]
        fields, _sql, returning = prepared
        sql = None
        if returning and connection.vendor in ("postgresql", "sqlite") and router.db_for_read(ConfigVersion) == using:
            qn = connection.ops.quote_name
            if connection.vendor == "postgresql":
                # A bare parameter in a SELECT list would be typed text; the column's type is known.
                values = ", ".join(f"CAST(%s AS {_parameter_type(f, connection)})" for f in fields)
            else:
                values = ", ".join(["%s"] * len(fields))  # column affinity converts, as for VALUES
            sql = "INSERT INTO {} ({}) SELECT {} WHERE EXISTS (SELECT 1 FROM {} WHERE id = 1 AND value = %s) RETURNING {}".format(
                qn(model._meta.db_table), ", ".join(qn(f.column) for f in fields), values,
                qn(ConfigVersion._meta.db_table), qn(model._meta.pk.column),
            )
        _statements[key] = sql
    return _statements[key]


# The statement is its own transaction (autocommit), so a local setting lasts exactly until
# its commit: one round trip, where SET LOCAL would need BEGIN, SET, INSERT and COMMIT.
_NOT_DURABLE = ", set_config('synchronous_commit', 'off', true)"


def insert(instance, links=None, durable=True):
    """Save a new ``instance`` (primary key unset) with its model's prepared INSERT.

    ``links`` maps attribute names to other new instances whose primary key goes there (a
    foreign key assigned an unsaved instance is linked the same way). Inside
    :func:`chained`, the row is written with the chain's statement, not now.

    ``durable=False``: on PostgreSQL, when the INSERT is a transaction of its own, it is
    committed with ``synchronous_commit`` off (answered before the WAL reaches the disk; a
    database crash may lose it, never half of it, and never a later durable commit).
    """
    chain = _chain.get()
    if chain is not None:
        chain.insert(instance, links)
        return instance
    _link(instance, links)
    model = type(instance)
    using = router.db_for_write(model, instance=instance)
    connection = connections[using]
    prepared = _prepared(model, using)
    if prepared is None or instance.pk is not None:
        config_cache.confirm()  # a save() cannot check an assumed version itself
        instance.save(using=using)
        return instance
    fields, sql, returning = prepared
    version = config_cache.assumed()
    if version is not None:
        conditional = _conditional_insert_sql(model, using, prepared)
        if conditional is None or pre_save.has_listeners(model):
            config_cache.confirm()  # this INSERT cannot check the version: check it first
            version = None
        else:
            sql = conditional
    if not durable and returning and connection.vendor == "postgresql" and not connection.in_atomic_block:
        sql += _NOT_DURABLE
    if pre_save.has_listeners(model):
        pre_save.send(sender=model, instance=instance, raw=False, using=using, update_fields=None)
    params = _db_values(instance, fields, connection)
    if version is not None:
        params.append(version)
    with transaction.mark_for_rollback_on_error(using), statement_cursor(connection) as cursor:
        cursor.execute(sql, params)
        if returning:
            row = cursor.fetchone()
        else:
            row = (connection.ops.last_insert_id(cursor, model._meta.db_table, model._meta.pk.column),)
    if version is not None:
        if row is None:  # conditional on a version that has moved on: nothing written
            config_cache.refuted()
        config_cache.confirmed(committed=not connection.in_atomic_block)
    pk = row[0]
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = using
    if post_save.has_listeners(model):
        post_save.send(sender=model, instance=instance, created=True, update_fields=None, raw=False, using=using)
    return instance


def _join_chains(related):
    """``related`` as a tuple of chains: one chain of names, or several."""
    if not related:
        return ()
    if isinstance(related[0], str):
        return (tuple(related),)
    return tuple(tuple(chain) for chain in related)


def _join_plan(model, chains, connection):
    """Tables, joins and per-table fields for ``model`` and chains of relation names:
    ``[(model, alias, via field, index of the table it hangs from)]`` and the JOIN clauses."""
    qn = connection.ops.quote_name
    steps = [(model, "t0", None, None)]
    joins = []
    for chain in chains:
        current, alias, parent = model, "t0", 0
        for name in chain:
            field = current._meta.get_field(name)
            target, target_alias = field.related_model, f"t{len(steps)}"
            if field.concrete:  # forward ForeignKey / OneToOneField
                on = f"{alias}.{qn(field.column)} = {target_alias}.{qn(field.target_field.column)}"
            elif field.one_to_one:  # reverse OneToOneField
                on = f"{target_alias}.{qn(field.field.column)} = {alias}.{qn(field.field.target_field.column)}"
            else:
                raise ValueError(f"{current.__name__}.{name}: only forward and reverse one-to-one relations can be joined")
            joins.append(f" LEFT OUTER JOIN {qn(target._meta.db_table)} {target_alias} ON {on}")
            steps.append((target, target_alias, field, parent))
            current, alias, parent = target, target_alias, len(steps) - 1
    return steps, joins


def _prepare_select(model, field_name, chains, connection, extra=None, null=(), annotations=(), lock=False):
    qn = connection.ops.quote_name
    steps, joins = _join_plan(model, chains, connection)
    columns, tables = [], []
    for step_model, alias, via, parent in steps:
        fields = step_model._meta.concrete_fields
        start = len(columns)
        for f in fields:
            col = f.get_col(alias)
            converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            columns.append((f"{alias}.{qn(f.column)}", col, converters))
        tables.append((step_model, via, parent, [f.attname for f in fields], start, len(columns),
                       fields.index(step_model._meta.pk)))
    for name, (sql_of, output_field) in annotations:
        col = _Expression(output_field)
        converters = connection.ops.get_db_converters(col) + output_field.get_db_converters(connection)
        columns.append((sql_of(qn), col, converters))
    where = model._meta.get_field(field_name)
    conditions = [f"t0.{qn(where.column)} = %s"] + [f"t0.{qn(model._meta.get_field(n).column)} IS NULL" for n in null]
    selected = [c[0] for c in columns] + ([extra] if extra else [])
    sql = "SELECT {} FROM {} t0{} WHERE {} LIMIT 1".format(
        ", ".join(selected), qn(model._meta.db_table), "".join(joins), " AND ".join(conditions)
    )
    if lock:
        sql += " FOR UPDATE OF t0"
    return sql, where, [(c[1], c[2]) for c in columns], tables, [name for name, _ in annotations]


class _Expression:
    """What the backends' converters are asked about a computed column: its output field."""

    def __init__(self, output_field):
        self.output_field = self.target = self.field = output_field


def first(model, field_name, value, related=(), config_version=False, *, null=(), annotations=(), lock=False):
    """The first ``model`` row whose ``field_name`` equals ``value`` (or None), with the
    ``related`` chain (forward or reverse one-to-one, e.g. ``("user", "oidc_subject")``), or
    several chains (``(("access_token",), ("user", "oidc_subject"))``), loaded and cached like
    ``select_related``.

    ``null``: fields that must also be NULL. ``annotations``: ``(name, (sql_of, output_field))``
    pairs, computed columns set as attributes of the row; ``sql_of(quote_name)`` returns the
    column's SQL, in which the row's table is ``t0`` (a module-level function: it is part of
    the statement's cache key).
    ``lock``: inside a transaction, where the database has row locks, ``FOR UPDATE`` of the
    row (not of the joined ones).
    ``config_version``: the request is about to need config_cache's version; when it has
    not read it yet, it comes as one more column of this SELECT (one round trip for both).
    """
    using = router.db_for_read(model)
    connection = connections[using]
    version = config_cache.version_sql(connection, using) if config_version else None
    lock = bool(lock) and connection.in_atomic_block and connection.features.has_select_for_update
    chains = _join_chains(related)
    annotations = tuple(annotations)
    key = (model, field_name, chains, using, version, tuple(null), annotations, lock)
    if key not in _selects:
        _selects[key] = _prepare_select(model, field_name, chains, connection, version, null, annotations, lock)
    sql, where, columns, tables, annotated = _selects[key]
    params = [where.get_db_prep_value(value, connection)]
    committed = not connection.in_atomic_block
    row = read_first(connection, lambda: fetch_one(connection, sql, params))
    if row is None:
        return None
    if version is not None:
        config_cache.observe(row[-1], committed)
    values = list(row)
    for i, (col, converters) in enumerate(columns):
        for converter in converters:
            values[i] = converter(values[i], col, connection)
    instances = []
    for step_model, via, parent, attnames, start, end, pk_index in tables:
        chunk = values[start:end]
        owner = instances[parent] if parent is not None else None
        if via is not None and owner is None:
            instances.append(None)  # hangs from a row that is absent
            continue
        instance = step_model.from_db(using, attnames, chunk) if chunk[pk_index] is not None else None
        if via is not None:
            via.set_cached_value(owner, instance)
            if instance is not None:
                if via.concrete and via.one_to_one:
                    via.remote_field.set_cached_value(instance, owner)
                elif not via.concrete:
                    via.field.set_cached_value(instance, owner)
        instances.append(instance)
    root = instances[0]
    for offset, name in enumerate(annotated):
        setattr(root, name, values[len(columns) - len(annotated) + offset])
    return root


def fetch_one(connection, sql, params=()):
    with statement_cursor(connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


@contextmanager
def statement_cursor(connection):
    """A cursor for one of this module's statements, executed and read at once.

    On PostgreSQL, while nothing watches the queries (``execute_wrappers``, query logging),
    a psycopg cursor kept for the connection, with what Django's cursor does around it (the
    health check, connecting, the broken-transaction check, errors as Django's): Django's
    builds a cursor, its adapters and its loaders anew for every query, and wraps it, some
    40 µs of each statement, where the round trip itself costs the client about 60.
    Elsewhere, Django's own cursor.
    """
    if connection.vendor != "postgresql" or connection.execute_wrappers or connection.queries_logged:
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    connection.validate_no_broken_transaction()
    raw = connection.connection
    kept = getattr(connection, "_statement_cursor", None)
    if kept is None or kept.connection is not raw or kept.closed:
        kept = connection._statement_cursor = raw.cursor()
    with connection.wrap_database_errors:
        yield kept


def read_first(connection, read):
    """``read()``, a SELECT (safe to repeat), standing in for ``CONN_HEALTH_CHECKS``' probe.

    With health checks on, Django sends ``SELECT 1`` before a request's first query, a round
    trip of its own on PostgreSQL (userinfo's token lookup and a code exchange's Grant read
    come first and paid it). Such a read can tell as well whether the persistent connection
    still works: it reconnects once when the server dropped it, as the probe would have.
    """
    checking = connection.health_check_enabled and not connection.health_check_done and not connection.in_atomic_block
    if checking:
        connection.health_check_done = True
    try:
        return read()
    except (InterfaceError, OperationalError):
        if not checking:
            raise
        connection.close()
        return read()


def delete(model, cleared=(), **equals):
    """Delete the rows whose fields equal ``equals``; the number deleted.

    One prepared DELETE when no row of another model can point at these and nobody listens
    for their deletion (what Django's own fast delete requires); ``QuerySet.delete()`` else.
    ``cleared``: foreign keys of other models that the caller has already set to NULL
    wherever they pointed at these rows, in this transaction.
    """
    using = router.db_for_write(model)
    connection = connections[using]
    if any(signal.has_listeners(model) for signal in (pre_delete, post_delete)) or _referenced(model, cleared):
        return model._default_manager.using(using).filter(**equals).delete()[0]
    sql, fields = _delete_statement(model, equals, using, connection)
    params = _equal_params(fields, equals, connection)
    with transaction.mark_for_rollback_on_error(using), statement_cursor(connection) as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _delete_statement(model, equals, using, connection):
    key = (model, tuple(sorted(equals)), using)
    if key not in _deletes:
        _deletes[key] = _prepare_delete(model, equals, connection)
    return _deletes[key]


def _prepare_delete(model, equals, connection):
    qn = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in sorted(equals)]
    where = " AND ".join(f"{qn(f.column)} = %s" for f in fields)
    return f"DELETE FROM {qn(model._meta.db_table)} WHERE {where}", fields


def _equal_params(fields, equals, connection):
    return [f.get_db_prep_value(getattr(equals[f.name], "pk", equals[f.name]), connection) for f in fields]


def _referenced(model, cleared=()):
    return any(rel.on_delete is not DO_NOTHING and rel.field not in cleared for rel in model._meta.related_objects)


def _db_values(instance, fields, connection, skip=()):
    """The row's values for ``fields`` as the ORM would write them (None for ``skip``'s attnames)."""
    return [None if f.attname in skip else _prep_save(f, f.pre_save(instance, True), connection) for f in fields]


def _prep_save(field, value, connection):
    """``field.get_db_prep_save(value, connection)``; for Django's own DateTimeField and an
    aware value (every timestamp a token row gets), the same result without the generic
    checks, a third of the time (a code exchange writes eight of them)."""
    if type(field) is DateTimeField and getattr(value, "utcoffset", None) is not None and value.utcoffset() is not None:
        if connection.vendor == "postgresql":
            return value  # Django's PostgreSQL backend passes aware datetimes to psycopg as they are
        if connection.vendor == "sqlite" and settings.USE_TZ:
            return str(value.astimezone(connection.timezone).replace(tzinfo=None))
    return field.get_db_prep_save(value, connection)


def _link(instance, links):
    for attname, other in (links or {}).items():
        setattr(instance, attname, other.pk)


# -- chains: a DELETE and the INSERTs that depend on it, written together --


def can_chain(using, delete_model, insert_models, *, updated_model=None, also_deleted=()):
    """Whether a :class:`Chain` can write these models on this database: its gate (a DELETE
    of ``delete_model``'s rows, or an UPDATE of ``updated_model``'s), the INSERTs, and the
    DELETEs that follow (``(model, cleared)`` pairs, as :func:`delete` takes them)."""
    connection = connections[using]
    if connection.vendor not in ("postgresql", "sqlite") or not connection.features.can_return_columns_from_insert:
        return False
    gate = updated_model or delete_model
    if any(router.db_for_write(m) != using for m in [gate, *insert_models, *(m for m, _ in also_deleted)]):
        return False
    deleted = ([(delete_model, ())] if updated_model is None else []) + list(also_deleted)
    for model, cleared in deleted:
        if any(signal.has_listeners(model) for signal in (pre_delete, post_delete)) or _referenced(model, cleared):
            return False
    return all(
        _prepared(model, using) is not None and not pre_save.has_listeners(model) and not post_save.has_listeners(model)
        for model in insert_models
    )


class Chain:
    """One DELETE (or UPDATE: :meth:`updating`) and the INSERTs made while the chain is open,
    written when it closes, the INSERTs (and :meth:`also_delete`'s DELETEs) only when the
    first statement found its row.

    On PostgreSQL, one statement: each INSERT selects from the DELETE's result
    (data-modifying CTEs), so when another request deleted the row first nothing is
    inserted; the statement is atomic on its own, and a redeemed code needs no BEGIN/COMMIT
    round trips. On SQLite, the statements back to back in one transaction, every value
    converted before it begins: the database's one write lock is held for the statements
    alone, not for the Python that builds the rows. A foreign key (or ``links``) to an
    earlier row of the chain takes that row's id from its INSERT's RETURNING.
    """

    def __init__(self, model, **equals):
        self.using = router.db_for_write(model)
        self.gate_model = model  # whose rows the first statement deletes (or updates)
        self.equals = equals
        self.values = None  # an UPDATE's {field name: value}; None: the gate is a DELETE
        self.null = ()
        self.also = []  # (model, equals): DELETEs after the gate
        self.rows = []  # (instance, {attname: index of an earlier row})
        self.deleted = None  # rows the gate deleted or updated

    @classmethod
    def updating(cls, model, values, null=(), **equals):
        """A chain whose gate sets ``values`` on the rows where ``equals`` hold and the
        ``null`` fields are NULL (a token's revocation: only an unrevoked one)."""
        chain = cls(model, **equals)
        chain.values = dict(values)
        chain.null = tuple(null)
        return chain

    def also_delete(self, model, **equals):
        """Delete these rows too, once the gate found its row (see :func:`can_chain`)."""
        self.also.append((model, equals))

    def __enter__(self):
        self._token = _chain.set(self)
        return self

    def __exit__(self, exc_type, exc, traceback):
        _chain.reset(self._token)
        if exc_type is None:
            self.execute()

    def insert(self, instance, links=None):
        if router.db_for_write(type(instance), instance=instance) != self.using or instance.pk is not None:
            raise ValueError(f"{type(instance).__name__}: a chain writes new rows of its own database only")
        refs = {attname: self._index(other) for attname, other in (links or {}).items()}
        for field in type(instance)._meta.concrete_fields:
            if field.is_relation and field.attname not in refs:
                other = field.get_cached_value(instance, default=None)
                if other is not None and other.pk is None:
                    refs[field.attname] = self._index(other)
        self.rows.append((instance, refs))

    def _index(self, other):
        for i, (row, _) in enumerate(self.rows):
            if row is other:
                return i
        raise ValueError(f"{type(other).__name__} is not a row of this chain: write it first")

    def execute(self):
        """Write the chain; the number of rows its first statement deleted or updated (0:
        nothing was written)."""
        config_cache.confirm()  # a chain's statements do not check an assumed version
        connection = connections[self.using]
        if connection.vendor != "postgresql":
            return self._execute_in_turn(connection)
        shape = (self.gate_model, tuple(sorted(self.equals)), self.using, self._gate_shape(),
                 tuple((model, tuple(sorted(equals))) for model, equals in self.also),
                 tuple((type(row), tuple(sorted(refs.items()))) for row, refs in self.rows))
        if shape not in _chains:
            _chains[shape] = self._prepare(connection)
        sql, gate_params, also_fields, inserts = _chains[shape]
        params = gate_params(self, connection)
        for (_model, equals), fields in zip(self.also, also_fields):
            params += _equal_params(fields, equals, connection)
        for (instance, _refs), fields in zip(self.rows, inserts):
            params += _db_values(instance, fields, connection)
        with transaction.mark_for_rollback_on_error(self.using), statement_cursor(connection) as cursor:
            cursor.execute(sql, params)
            deleted, *pks = cursor.fetchone()
        self.deleted = deleted
        if not deleted:
            return 0
        self._written(pks)
        return deleted

    def _gate_shape(self):
        return None if self.values is None else (tuple(sorted(self.values)), self.null)

    def _gate(self, connection):
        """The gate's SQL and a function of (chain, connection) giving its parameters."""
        if self.values is None:
            sql, fields = _prepare_delete(self.gate_model, self.equals, connection)
            return sql, lambda chain, c: _equal_params(fields, chain.equals, c)
        qn = connection.ops.quote_name
        meta = self.gate_model._meta
        set_fields = [meta.get_field(name) for name in sorted(self.values)]
        where_fields = [meta.get_field(name) for name in sorted(self.equals)]
        where = [f"{qn(f.column)} = %s" for f in where_fields] + [f"{qn(meta.get_field(n).column)} IS NULL" for n in self.null]
        sql = "UPDATE {} SET {} WHERE {}".format(
            qn(meta.db_table), ", ".join(f"{qn(f.column)} = %s" for f in set_fields), " AND ".join(where)
        )

        def params(chain, c):
            values = [_prep_save(f, getattr(chain.values[f.name], "pk", chain.values[f.name]), c) for f in set_fields]
            return values + _equal_params(where_fields, chain.equals, c)

        return sql, params

    def _execute_in_turn(self, connection):
        key = ("in turn", self.gate_model, tuple(sorted(self.equals)), self.using, self._gate_shape())
        if key not in _chains:
            _chains[key] = self._gate(connection)
        gate_sql, gate_params = _chains[key]
        gate_values = gate_params(self, connection)
        also = []
        for model, equals in self.also:
            sql, fields = _delete_statement(model, equals, self.using, connection)
            also.append((sql, _equal_params(fields, equals, connection)))
        inserts = []
        for instance, refs in self.rows:
            fields, sql, _returning = _prepared(type(instance), self.using)
            params = _db_values(instance, fields, connection, skip=refs)
            linked = [(position, refs[f.attname]) for position, f in enumerate(fields) if f.attname in refs]
            inserts.append((sql, params, linked))
        pks = []
        with transaction.atomic(using=self.using, savepoint=False), connection.cursor() as cursor:
            cursor.execute(gate_sql, gate_values)
            self.deleted = cursor.rowcount
            if not self.deleted:
                return 0
            for sql, also_params in also:
                cursor.execute(sql, also_params)
            for sql, params, linked in inserts:
                for position, index in linked:
                    params[position] = pks[index]
                cursor.execute(sql, params)
                pks.append(cursor.fetchone()[0])
        self._written(pks)
        return self.deleted

    def _written(self, pks):
        for (instance, _refs), pk in zip(self.rows, pks):
            instance.pk = pk
            instance._state.adding = False
            instance._state.db = self.using
        for instance, refs in self.rows:
            for attname, index in refs.items():
                setattr(instance, attname, self.rows[index][0].pk)

    def _prepare(self, connection):
        qn = connection.ops.quote_name
        gate_sql, gate_params = self._gate(connection)
        ctes = [f"d AS ({gate_sql} RETURNING 1)"]
        also_fields = []
        for i, (model, equals) in enumerate(self.also):
            sql, fields = _prepare_delete(model, equals, connection)
            ctes.append(f"x{i} AS ({sql} AND EXISTS (SELECT 1 FROM d) RETURNING 1)")
            also_fields.append(fields)
        inserts = []
        for i, (instance, refs) in enumerate(self.rows):
            model_meta = type(instance)._meta
            all_fields = _prepared(type(instance), self.using)[0]  # the columns of its own INSERT
            values, fields, sources = [], [], {"d"}
            for f in all_fields:
                if f.attname in refs:
                    source = f"r{refs[f.attname]}"
                    sources.add(source)
                    values.append(f"{source}.id")
                else:
                    # A bare parameter in a SELECT list would be typed text; the column's type is known.
                    values.append(f"CAST(%s AS {_parameter_type(f, connection)})")
                    fields.append(f)
            from_ = ", ".join(sorted(sources - {"d"}) or ["d"])
            ctes.append(
                f"r{i} AS (INSERT INTO {qn(model_meta.db_table)} ({', '.join(qn(f.column) for f in all_fields)}) "
                f"SELECT {', '.join(values)} FROM {from_} RETURNING {qn(model_meta.pk.column)} AS id)"
            )
            inserts.append(fields)
        selects = ["(SELECT count(*) FROM d)"] + [f"(SELECT id FROM r{i})" for i in range(len(self.rows))]
        return f"WITH {', '.join(ctes)} SELECT {', '.join(selects)}", gate_params, also_fields, inserts

