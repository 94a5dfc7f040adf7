"""The store in prepared SQL, for PostgreSQL and SQLite.

The ORM builds each statement anew on every call, which costs more than running it; the
rows of the hot path (the tokens a grant writes, the token or code a request reads with its
user and subject) are written and read here with statements built once per model and
database from the models' ``_meta`` (so swapped token and user models work). Values go in
through the fields' ``pre_save``/``get_db_prep_save`` and come out through the backend's and
fields' converters and ``Model.from_db``, as with the ORM.

A code's redemption and a refresh token's rotation are a :class:`Chain`: the DELETE or
UPDATE that decides single use and the INSERTs that follow it. On PostgreSQL that is one
statement (data-modifying CTEs, the INSERTs selecting from the decider's result), so it
needs no BEGIN/COMMIT round trips; on SQLite, the statements back to back in one
transaction whose values are all converted before it begins, so the database's one write
lock is held for the statements alone.

Where a model cannot be written this way (a receiver listens for its signals, something else
points at a deleted row, a table on another database), the ORM store's code does the work.
"""

import weakref

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import DO_NOTHING, CharField, DateTimeField
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_refresh_token_model,
)

from .. import config_cache
from ..conf import oidc_settings
from ..models import ConfigVersion, LoginSession, RedeemedCode, SessionSignIn
from . import FAST_VENDORS
from .orm import OrmStore

_inserts = {}
_selects = {}
_chains = {}
_cursors = weakref.WeakKeyDictionary()  # Django connection -> (its database connection, a cursor of it)


class FastStore(OrmStore):
    def save_code(self, grant):
        if not _insertable(type(grant)):
            return super().save_code(grant)
        return insert(grant, durable=not oidc_settings.ASYNC_COMMIT_AUTHORIZATION_CODES)

    def read_code(self, digest):
        return first(get_grant_model(), "code", digest, related=("user", "oidc_subject"), config_version=True)

    def redeem_code(self, digest, application, tokens):
        rows = _rows(tokens)
        spent = None
        if tokens.refresh_token is None:
            spent = RedeemedCode(code_digest=digest, application=application)
            rows.append(spent)
        grant_model = get_grant_model()
        if not can_chain(grant_model, [type(row) for row in rows]):
            return super().redeem_code(digest, application, tokens)
        chain = Chain(grant_model, code=digest, application=application)
        for row in rows:
            chain.insert(row, links={"access_token_id": tokens.access_token} if row is spent else None)
        return bool(chain.execute())

    def issue_access_token(self, tokens):
        rows = _rows(tokens)
        if not all(_insertable(type(row)) for row in rows):
            return super().issue_access_token(tokens)
        if len(rows) == 1:
            # Nothing else is written with it: it may be answered before its commit is on disk.
            insert(tokens.access_token, durable=not oidc_settings.ASYNC_COMMIT_LONE_ACCESS_TOKENS,
                   assumed_version=config_cache.assumed_version())
            return
        config_cache.confirm()
        with transaction.atomic(using=router.db_for_write(type(tokens.access_token))):
            for row in rows:
                insert(row)

    def rotate_refresh_token(self, previous, tokens):
        refresh_model, access_model = type(previous), get_access_token_model()
        released = refresh_model._meta.get_field("access_token")
        rows = _rows(tokens)
        if not can_chain(refresh_model, [type(row) for row in rows], updated=True, also_deleted=[(access_model, [released])]):
            return super().rotate_refresh_token(previous, tokens)
        # DOT's RefreshToken.revoke(): revoked stamped, its access token deleted.
        chain = Chain.updating(refresh_model, {"revoked": timezone.now(), "access_token": None}, null=("revoked",),
                               **{refresh_model._meta.pk.name: previous.pk})
        chain.also_delete(access_model, **{access_model._meta.pk.name: previous.access_token_id})
        for row in rows:
            chain.insert(row)
        return bool(chain.execute())

    def read_access_token(self, checksum):
        return first(get_access_token_model(), "token_checksum", checksum, related=("user", "oidc_subject"),
                     config_version=True)

    def read_refresh_token(self, checksum):
        model = get_refresh_token_model()
        annotations = (
            ("family_born", (_family_born_sql, model._meta.get_field("created"))),
            ("sid", (_family_sid_sql, LoginSession._meta.get_field("sid"))),
        )
        return first(model, "token_checksum", checksum, related=(("access_token",), ("user", "oidc_subject")),
                     annotations=annotations, order_revoked=True, config_version=True)

    def save_id_token(self, id_token):
        if not _insertable(type(id_token)):
            return super().save_id_token(id_token)
        return insert(id_token)

    def read_config_version(self):
        # Read before the first decision of most requests: the ORM would build it anew each time.
        using = router.db_for_read(ConfigVersion)
        connection = connections[using]
        if connection.vendor not in FAST_VENDORS:
            return super().read_config_version()
        key = (ConfigVersion, using)
        if key not in _selects:
            _selects[key] = _version_select(ConfigVersion, connection)
        cursor = statement_cursor(connection)
        cursor.execute(_selects[key])
        row = cursor.fetchone()
        return None if row is None else row[0]


def statement_cursor(connection):
    """A cursor for the store's statements, one kept per database connection: a new cursor
    (psycopg's above all) sets up again its adapters and the loader of every column it
    reads, a large share of a request that reads one wide row. Wrapped as Django wraps its
    own cursors, so execute wrappers and query logging see these statements like any other."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    kept = _cursors.get(connection)
    if kept is None or kept[0] is not connection.connection:  # first use, or reconnected since
        with connection.wrap_database_errors:
            kept = _cursors[connection] = (connection.connection, connection.create_cursor())
    connection.validate_thread_sharing()
    return connection.make_debug_cursor(kept[1]) if connection.queries_logged else connection.make_cursor(kept[1])


def _rows(tokens):
    return [row for row in (tokens.id_token, tokens.access_token, tokens.refresh_token) if row is not None]


def _family_born_sql(qn):
    meta = get_refresh_token_model()._meta
    table, created, family = qn(meta.db_table), qn(meta.get_field("created").column), qn(meta.get_field("token_family").column)
    return f"(SELECT f.{created} FROM {table} f WHERE f.{family} = t0.{family} ORDER BY f.{created} LIMIT 1)"


def _family_sid_sql(qn):
    sign_in, session = SessionSignIn._meta, LoginSession._meta
    return "(SELECT s.{} FROM {} i JOIN {} s ON s.{} = i.{} WHERE i.{} = t0.{} LIMIT 1)".format(
        qn(session.get_field("sid").column), qn(sign_in.db_table), qn(session.db_table), qn(session.pk.column),
        qn(sign_in.get_field("session").column), qn(sign_in.get_field("token_family").column),
        qn(get_refresh_token_model()._meta.get_field("token_family").column),
    )


# -- INSERT ---------------------------------------------------------------------------


def _prepare(model, connection):
    meta = model._meta
    if meta.parents or not meta.auto_field or meta.pk is not meta.auto_field:
        return None
    fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
    if any(f.generated or f.has_db_default() for f in fields):
        return None
    qn = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({}) RETURNING {}".format(
        qn(meta.db_table), ", ".join(qn(f.column) for f in fields), ", ".join(["%s"] * len(fields)), qn(meta.pk.column)
    )
    return fields, sql


def _prepared(model, using):
    key = (model, using)
    if key not in _inserts:
        _inserts[key] = _prepare(model, connections[using])
    return _inserts[key]


def _insertable(model):
    using = router.db_for_write(model)
    return (
        connections[using].vendor in FAST_VENDORS
        and _prepared(model, using) is not None
        and not pre_save.has_listeners(model)
        and not post_save.has_listeners(model)
    )


# The statement is its own transaction (autocommit), so a local setting lasts exactly until
# its commit: one round trip, where SET LOCAL would need BEGIN, SET, INSERT and COMMIT.
_NOT_DURABLE = ", set_config('synchronous_commit', 'off', true)"


def insert(instance, durable=True, assumed_version=None):
    """Save a new ``instance`` (primary key unset, see :func:`_insertable`) with its
    model's prepared INSERT. ``durable=False``: on PostgreSQL, outside a transaction, its
    commit does not wait for the disk (a database crash may lose it, never half of it).
    ``assumed_version``: written only while config_cache's version is that one, else
    ``config_cache.Changed`` is raised and nothing is written."""
    model = type(instance)
    using = router.db_for_write(model, instance=instance)
    connection = connections[using]
    fields, sql = _prepared(model, using)
    version = None
    if assumed_version is not None:
        version = config_cache.version_model(using)
        if version is None:  # kept on another database: read it first
            config_cache.confirm()
        else:
            sql = _conditional(model, using, _version_subquery(version, connection))
    if not durable and connection.vendor == "postgresql" and not connection.in_atomic_block:
        sql += _NOT_DURABLE
    instance._prepare_related_fields_for_save(operation_name="save")  # as save(): a related row saved since
    params = _db_values(instance, fields, connection)
    if version is not None:
        params.append(assumed_version)
    with transaction.mark_for_rollback_on_error(using):
        cursor = statement_cursor(connection)
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if version is not None:
        if row is None:
            raise config_cache.Changed
        config_cache.confirmed()
    _saved(instance, row[0], using)
    return instance


def _version_select(version_model, connection):
    """The SELECT of config_cache's version (the ConfigVersion row's value)."""
    qn = connection.ops.quote_name
    meta = version_model._meta
    return f"SELECT {qn(meta.get_field('value').column)} FROM {qn(meta.db_table)} WHERE {qn(meta.pk.column)} = 1"


def _version_subquery(version_model, connection):
    return f"({_version_select(version_model, connection)})"


def _conditional(model, using, version):
    """The model's INSERT, written only where ``version`` (a subquery) equals one more parameter."""
    key = (model, using, "conditional")
    if key not in _inserts:
        connection = connections[using]
        qn = connection.ops.quote_name
        meta = model._meta
        fields = _prepared(model, using)[0]
        # PostgreSQL types a bare parameter of a SELECT list as text; SQLite keeps values as given.
        cast = connection.vendor == "postgresql"
        values = ", ".join(f"CAST(%s AS {_parameter_type(f, connection)})" if cast else "%s" for f in fields)
        _inserts[key] = "INSERT INTO {} ({}) SELECT {} WHERE {} = %s RETURNING {}".format(
            qn(meta.db_table), ", ".join(qn(f.column) for f in fields), values, version, qn(meta.pk.column)
        )
    return _inserts[key]


def _saved(instance, pk, using):
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = using


def _parameter_type(field, connection):
    """The type a parameter of an INSERT … SELECT is cast to: the column's, but a string's
    without its length, so that an over-long value is refused as VALUES would refuse it
    (an explicit cast to varchar(n) would cut it short)."""
    if isinstance(field, CharField):
        return connection.ops.cast_char_field_without_max_length
    return field.cast_db_type(connection)


def _db_values(instance, fields, connection, skip=()):
    """The row's values for ``fields`` as the ORM would write them (None for ``skip``'s attnames)."""
    return [None if f.attname in skip else _prep_save(f, f.pre_save(instance, True), connection) for f in fields]


def _prep_save(field, value, connection):
    """``field.get_db_prep_save(value, connection)``; for Django's own DateTimeField and an
    aware value (every timestamp a token row gets), the same result without the generic
    checks, which cost more than the rest of the conversion."""
    if type(field) is DateTimeField and getattr(value, "utcoffset", None) is not None and value.utcoffset() is not None:
        if connection.vendor == "postgresql":
            return value  # Django's PostgreSQL backend passes aware datetimes to psycopg as they are
        if settings.USE_TZ:
            return str(value.astimezone(connection.timezone).replace(tzinfo=None))
    return field.get_db_prep_save(value, connection)


# -- SELECT ---------------------------------------------------------------------------


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
            else:  # reverse OneToOneField
                on = f"{target_alias}.{qn(field.field.column)} = {alias}.{qn(field.field.target_field.column)}"
            joins.append(f" LEFT OUTER JOIN {qn(target._meta.db_table)} {target_alias} ON {on}")
            steps.append((target, target_alias, field, parent))
            current, alias, parent = target, target_alias, len(steps) - 1
    return steps, joins


class _Expression:
    """What the backends' converters are asked about a computed column: its output field."""

    def __init__(self, output_field):
        self.output_field = self.target = self.field = output_field


def _prepare_select(model, field_name, chains, connection, annotations, order_revoked, version_sql):
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
    for _name, (sql_of, output_field) in annotations:
        col = _Expression(output_field)
        converters = connection.ops.get_db_converters(col) + output_field.get_db_converters(connection)
        columns.append((sql_of(qn), col, converters))
    # config_cache's version, when carried, is the last column: read as it is, no converter.
    selected = [c[0] for c in columns] + ([version_sql] if version_sql is not None else [])
    where = model._meta.get_field(field_name)
    # The live row first, were a checksum ever issued twice (unique with ``revoked``).
    revoked = qn(model._meta.get_field("revoked").column) if order_revoked else None
    order = f" ORDER BY t0.{revoked} IS NOT NULL, t0.{revoked} DESC" if order_revoked else ""
    sql = "SELECT {} FROM {} t0{} WHERE t0.{} = %s{} LIMIT 1".format(
        ", ".join(selected), qn(model._meta.db_table), "".join(joins), qn(where.column), order
    )
    return sql, where, [(c[1], c[2]) for c in columns], tables, [name for name, _ in annotations]


def first(model, field_name, value, related=(), *, annotations=(), order_revoked=False, config_version=False):
    """The first ``model`` row whose ``field_name`` equals ``value`` (or None), with the
    ``related`` chain (forward or reverse one-to-one, e.g. ``("user", "oidc_subject")``), or
    several chains (``(("access_token",), ("user", "oidc_subject"))``), loaded and cached like
    ``select_related``. ``annotations``: ``(name, (sql_of, output_field))`` pairs, computed
    columns set as attributes of the row; ``sql_of(quote_name)`` returns the column's SQL, in
    which the row's table is ``t0`` (a module-level function: it is part of the cache key).
    ``config_version``: carry config_cache's version when the request has yet to read it."""
    using = router.db_for_read(model)
    connection = connections[using]
    chains = (tuple(related),) if related and isinstance(related[0], str) else tuple(tuple(c) for c in related)
    version = config_cache.wanted(using) if config_version else None
    version_sql = _version_subquery(version, connection) if version is not None else None
    key = (model, field_name, chains, using, tuple(annotations), order_revoked, version_sql)
    if key not in _selects:
        _selects[key] = _prepare_select(model, field_name, chains, connection, annotations, order_revoked, version_sql)
    sql, where, columns, tables, annotated = _selects[key]
    cursor = statement_cursor(connection)
    cursor.execute(sql, [where.get_db_prep_value(value, connection)])
    row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    if version_sql is not None:
        config_cache.observe(values.pop(), using)
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


# -- chains: the write that decides single use, and what follows it -----------------


def _prepare_delete(model, equals, connection):
    qn = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in sorted(equals)]
    where = " AND ".join(f"{qn(f.column)} = %s" for f in fields)
    return f"DELETE FROM {qn(model._meta.db_table)} WHERE {where}", fields


def _equal_params(fields, equals, connection):
    return [f.get_db_prep_value(getattr(equals[f.name], "pk", equals[f.name]), connection) for f in fields]


def _deletable(model, cleared=()):
    """Whether a plain DELETE may remove ``model``'s rows: nobody listens for their deletion
    and no row of another model can point at them (but through ``cleared``, foreign keys the
    chain sets to NULL first)."""
    return not any(signal.has_listeners(model) for signal in (pre_delete, post_delete)) and not any(
        rel.on_delete is not DO_NOTHING and rel.field not in cleared for rel in model._meta.related_objects
    )


def can_chain(gate_model, insert_models, *, updated=False, also_deleted=()):
    """Whether a :class:`Chain` can write these models: its gate (a DELETE of
    ``gate_model``'s rows, or with ``updated`` an UPDATE), the INSERTs, and the DELETEs that
    follow (``(model, cleared)`` pairs, see :func:`_deletable`)."""
    using = router.db_for_write(gate_model)
    if connections[using].vendor not in FAST_VENDORS:
        return False
    if any(router.db_for_write(m) != using for m in [*insert_models, *(m for m, _ in also_deleted)]):
        return False
    deleted = list(also_deleted) + ([] if updated else [(gate_model, ())])
    return all(_deletable(model, cleared) for model, cleared in deleted) and all(_insertable(m) for m in insert_models)


class Chain:
    """One DELETE (or UPDATE: :meth:`updating`), the INSERTs given to :meth:`insert` and the
    DELETEs given to :meth:`also_delete`, the latter two written only when the first
    statement found its row. A foreign key to an earlier row of the chain (an unsaved
    instance assigned to it, or ``links``) takes that row's id from its INSERT."""

    def __init__(self, model, **equals):
        self.using = router.db_for_write(model)
        self.gate_model = model
        self.equals = equals
        self.values = None  # an UPDATE's {field name: value}; None: the gate is a DELETE
        self.null = ()
        self.also = []  # (model, equals)
        self.rows = []  # (instance, {attname: index of an earlier row})

    @classmethod
    def updating(cls, model, values, null=(), **equals):
        """A chain whose gate sets ``values`` on the rows where ``equals`` hold and the
        ``null`` fields are NULL (a token's revocation: only an unrevoked one)."""
        chain = cls(model, **equals)
        chain.values, chain.null = dict(values), tuple(null)
        return chain

    def also_delete(self, model, **equals):
        self.also.append((model, equals))

    def insert(self, instance, links=None):
        refs = {attname: self._index(other) for attname, other in (links or {}).items()}
        for field in type(instance)._meta.concrete_fields:
            if field.is_relation and field.attname not in refs:
                other = field.get_cached_value(instance, default=None)
                if other is not None and other.pk is None:
                    refs[field.attname] = self._index(other)
        self.rows.append((instance, refs))

    def _index(self, other):
        return next(i for i, (row, _) in enumerate(self.rows) if row is other)

    def execute(self):
        """Write the chain; the number of rows its gate deleted or updated (0: nothing written)."""
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
        with transaction.mark_for_rollback_on_error(self.using):
            cursor = statement_cursor(connection)
            cursor.execute(sql, params)
            decided, *pks = cursor.fetchone()
        if decided:
            self._written(pks)
        return decided

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
            sql, fields = _prepare_delete(model, equals, connection)
            also.append((sql, _equal_params(fields, equals, connection)))
        inserts = []
        for instance, refs in self.rows:
            fields, sql = _prepared(type(instance), self.using)
            params = _db_values(instance, fields, connection, skip=refs)
            linked = [(position, refs[f.attname]) for position, f in enumerate(fields) if f.attname in refs]
            inserts.append((sql, params, linked))
        pks = []
        with transaction.atomic(using=self.using, savepoint=False):
            cursor = statement_cursor(connection)
            cursor.execute(gate_sql, gate_values)
            decided = cursor.rowcount
            if not decided:
                return 0
            for sql, also_params in also:
                cursor.execute(sql, also_params)
            for sql, params, linked in inserts:
                for position, index in linked:
                    params[position] = pks[index]
                cursor.execute(sql, params)
                pks.append(cursor.fetchone()[0])
        self._written(pks)
        return decided

    def _written(self, pks):
        for (instance, _refs), pk in zip(self.rows, pks):
            _saved(instance, pk, self.using)
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
            meta = type(instance)._meta
            all_fields = _prepared(type(instance), self.using)[0]
            values, fields, sources = [], [], set()
            for f in all_fields:
                if f.attname in refs:
                    source = f"r{refs[f.attname]}"
                    sources.add(source)
                    values.append(f"{source}.id")
                else:
                    # A bare parameter in a SELECT list would be typed text; the column's type is known.
                    values.append(f"CAST(%s AS {_parameter_type(f, connection)})")
                    fields.append(f)
            from_ = ", ".join(sorted(sources) or ["d"])
            ctes.append(
                f"r{i} AS (INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in all_fields)}) "
                f"SELECT {', '.join(values)} FROM {from_} RETURNING {qn(meta.pk.column)} AS id)"
            )
            inserts.append(fields)
        selects = ["(SELECT count(*) FROM d)"] + [f"(SELECT id FROM r{i})" for i in range(len(self.rows))]
        return f"WITH {', '.join(ctes)} SELECT {', '.join(selects)}", gate_params, also_fields, inserts
