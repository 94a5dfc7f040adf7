"""Prepared SQL for the rows every token request writes or reads.

The ORM builds each statement anew on every call: about 0.15 ms per INSERT and 0.3–0.6 ms
per SELECT with ``select_related`` on the benchmark machine, against some 0.03 ms to run
the statement. On the hot path (the tokens a grant writes; the token, with its user and
``sub``, that userinfo and introspection read; the code's Grant) that was most of a request.

Here each statement is built once per model and database from the models' ``_meta`` (so
swapped token and user models work), and each call only converts values, with the fields'
own ``pre_save``/``get_db_prep_save`` going in and the backend's and fields' converters and
``Model.from_db`` coming out, as the ORM does.

- ``insert(instance)``: a new row. ``pre_save``/``post_save`` are still sent when anything
  listens. Models it cannot write this way (multi-table inheritance, a primary key that is
  not generated, database defaults) go through ``save()``.
- ``first(model, field, value, related)``: the row whose ``field`` equals ``value``, or None,
  with the ``related`` chain joined and cached as ``select_related`` would.
- ``delete(model, **equals)``: rows nothing else points at, in one DELETE.
"""

from django.db import connections, router, transaction
from django.db.models import DO_NOTHING
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

_statements = {}
_selects = {}
_deletes = {}


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


def insert(instance):
    """Save a new ``instance`` (primary key unset) with its model's prepared INSERT."""
    model = type(instance)
    using = router.db_for_write(model, instance=instance)
    connection = connections[using]
    key = (model, using)
    if key not in _statements:
        _statements[key] = _prepare(model, connection)
    prepared = _statements[key]
    if prepared is None or instance.pk is not None:
        instance.save(using=using)
        return instance
    fields, sql, returning = prepared
    if pre_save.has_listeners(model):
        pre_save.send(sender=model, instance=instance, raw=False, using=using, update_fields=None)
    params = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
        cursor.execute(sql, params)
        if returning:
            pk = cursor.fetchone()[0]
        else:
            pk = connection.ops.last_insert_id(cursor, model._meta.db_table, model._meta.pk.column)
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = using
    if post_save.has_listeners(model):
        post_save.send(sender=model, instance=instance, created=True, update_fields=None, raw=False, using=using)
    return instance


def _join_plan(model, related, connection):
    """Tables, joins and per-table fields for ``model`` and a chain of relation names."""
    qn = connection.ops.quote_name
    steps = [(model, "t0", None)]
    joins = []
    current, alias = model, "t0"
    for i, name in enumerate(related, start=1):
        field = current._meta.get_field(name)
        target, target_alias = field.related_model, f"t{i}"
        if field.concrete:  # forward ForeignKey / OneToOneField
            on = f"{alias}.{qn(field.column)} = {target_alias}.{qn(field.target_field.column)}"
        elif field.one_to_one:  # reverse OneToOneField
            on = f"{target_alias}.{qn(field.field.column)} = {alias}.{qn(field.field.target_field.column)}"
        else:
            raise ValueError(f"{current.__name__}.{name}: only forward and reverse one-to-one relations can be joined")
        joins.append(f" LEFT OUTER JOIN {qn(target._meta.db_table)} {target_alias} ON {on}")
        steps.append((target, target_alias, field))
        current, alias = target, target_alias
    return steps, joins


def _prepare_select(model, field_name, related, connection):
    qn = connection.ops.quote_name
    steps, joins = _join_plan(model, related, connection)
    columns, tables = [], []
    for step_model, alias, via in steps:
        fields = step_model._meta.concrete_fields
        start = len(columns)
        for f in fields:
            col = f.get_col(alias)
            converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            columns.append((f"{alias}.{qn(f.column)}", col, converters))
        tables.append((step_model, via, [f.attname for f in fields], start, len(columns), fields.index(step_model._meta.pk)))
    where = model._meta.get_field(field_name)
    sql = "SELECT {} FROM {} t0{} WHERE t0.{} = %s LIMIT 1".format(
        ", ".join(c[0] for c in columns), qn(model._meta.db_table), "".join(joins), qn(where.column)
    )
    return sql, where, [(c[1], c[2]) for c in columns], tables


def first(model, field_name, value, related=()):
    """The first ``model`` row whose ``field_name`` equals ``value`` (or None), with the
    ``related`` chain (forward or reverse one-to-one, e.g. ``("user", "oidc_subject")``)
    loaded and cached like ``select_related("user__oidc_subject")``."""
    using = router.db_for_read(model)
    connection = connections[using]
    key = (model, field_name, tuple(related), using)
    if key not in _selects:
        _selects[key] = _prepare_select(model, field_name, related, connection)
    sql, where, columns, tables = _selects[key]
    with connection.cursor() as cursor:
        cursor.execute(sql, [where.get_db_prep_value(value, connection)])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for i, (col, converters) in enumerate(columns):
        for converter in converters:
            values[i] = converter(values[i], col, connection)
    previous = None
    root = None
    for step_model, via, attnames, start, end, pk_index in tables:
        chunk = values[start:end]
        instance = step_model.from_db(using, attnames, chunk) if chunk[pk_index] is not None else None
        if via is None:
            root = instance
        elif via.concrete:
            via.set_cached_value(previous, instance)
            if instance is not None and via.one_to_one:
                via.remote_field.set_cached_value(instance, previous)
        else:
            via.set_cached_value(previous, instance)
            if instance is not None:
                via.field.set_cached_value(instance, previous)
        if instance is None:
            break
        previous = instance
    return root


def delete(model, **equals):
    """Delete the rows whose fields equal ``equals``; the number deleted.

    One prepared DELETE when no row of another model can point at these and nobody listens
    for their deletion (what Django's own fast delete requires); ``QuerySet.delete()`` else.
    """
    using = router.db_for_write(model)
    connection = connections[using]
    if any(signal.has_listeners(model) for signal in (pre_delete, post_delete)) or _referenced(model):
        return model._default_manager.using(using).filter(**equals).delete()[0]
    names = tuple(sorted(equals))
    key = (model, names, using)
    if key not in _deletes:
        qn = connection.ops.quote_name
        fields = [model._meta.get_field(name) for name in names]
        where = " AND ".join(f"{qn(f.column)} = %s" for f in fields)
        _deletes[key] = (f"DELETE FROM {qn(model._meta.db_table)} WHERE {where}", fields)
    sql, fields = _deletes[key]
    params = [f.get_db_prep_value(getattr(equals[f.name], "pk", equals[f.name]), connection) for f in fields]
    with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _referenced(model):
    return any(rel.on_delete is not DO_NOTHING for rel in model._meta.related_objects)
