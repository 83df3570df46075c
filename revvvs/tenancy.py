"""Operator scoping for the admin: a manager sees and changes only their operator's data."""

from datetime import date

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db import DataError, transaction
from django.db.models import QuerySet
from django.http import HttpResponseBadRequest, HttpResponseRedirect, QueryDict


def user_operator_id(user) -> int | None:
    """None for a superuser (sees all), the operator id for a manager."""
    if user.is_superuser:
        return None
    return user.operator_id or -1  # a staff user without an operator sees nothing


def operator_access_check(*, user, operator_id: int, what: str) -> None:
    """Services that act for a user call this: a manager may act only on their own
    operator's `what`; a superuser (or no user: the system itself) on any.

    Raises:
        PermissionDenied: the user is a manager of another operator, or of none.
    """
    if user is None:
        return
    own = user_operator_id(user)
    if own is not None and own != operator_id:
        raise PermissionDenied(f"{what} belongs to another operator")


def scope_queryset(queryset: QuerySet, user, operator_path: str) -> QuerySet:
    operator_id = user_operator_id(user)
    if operator_id is None:
        return queryset
    return queryset.filter(**{operator_path: operator_id})


# How each model reaches its operator; used to scope foreign-key choices in forms.
OPERATOR_PATHS: dict[str, str] = {
    "revvvs.operator": "pk",
    "revvvs.brand": "operator",
    "revvvs.user": "operator",
    "events.apikey": "operator",
    "events.event": "operator",
    "attribution.affiliate": "operator",
    "attribution.trackinglink": "affiliate__operator",
    "attribution.promocode": "operator",
    "attribution.click": "affiliate__operator",
    "attribution.player": "brand__operator",
}


def register_operator_path(model_label: str, path: str) -> None:
    OPERATOR_PATHS[model_label.lower()] = path


class HandEditedRequestsMixin:
    """A list page's answers to requests no link or button sends (a hand-edited URL or
    form): a NUL character (PostgreSQL refuses it in text: a 500) is a 400; a selection that
    names no item and a date-hierarchy date off the calendar are refused with a message,
    where Django's own code raises (ValueError, OverflowError: a 500), and so is a filter
    value the database refuses (DataError)."""

    def changelist_view(self, request, extra_context=None):
        params = [*request.GET.lists(), *request.POST.lists()]
        if any("\x00" in value for _, values in params for value in values):
            return HttpResponseBadRequest("a request parameter holds a NUL character")
        if request.method == "POST" and "action" in request.POST:
            pk = self.model._meta.pk
            try:
                for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                    pk.to_python(value)
            except ValidationError:
                self.message_user(
                    request,
                    "The selection names no item of this list; select the items again.",
                    messages.WARNING,
                )
                return HttpResponseRedirect(request.get_full_path())
        if not self._date_hierarchy_ok(request):
            self.message_user(request, "That date is off the calendar.", messages.WARNING)
            return HttpResponseRedirect(request.path)
        if request.method != "GET":  # actions keep their own transactions
            return super().changelist_view(request, extra_context)
        try:
            # Django lets any lookup on the model's own fields through the query string
            # (?amount__gt=1e999999, ?memo__regex=[): a value the database refuses is a
            # message on the plain list, not a 500. Rendered here: the rows are read then.
            with transaction.atomic():
                response = super().changelist_view(request, extra_context)
                if hasattr(response, "render") and not response.is_rendered:
                    response.render()
        except DataError:
            self.message_user(
                request,
                "The database cannot filter by that value; the list is shown unfiltered.",
                messages.WARNING,
            )
            return HttpResponseRedirect(request.path)
        return response

    def get_changelist(self, request, **kwargs):
        return _ChangeList

    def _date_hierarchy_ok(self, request) -> bool:
        field = getattr(self, "date_hierarchy", None)
        if not field:
            return True
        parts = [request.GET.get(f"{field}__{part}") for part in ("year", "month", "day")]
        if not any(parts):
            return True
        try:
            year, month, day = (int(value) if value else 1 for value in parts)
            date(year, month, day)
        except (TypeError, ValueError):
            return False
        return 1970 <= year <= 9998


class _ChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        if self.date_hierarchy and self.clear_all_filters_qs:
            # Django keeps the date bar's own __gte/__lt datetimes in "Clear all filters",
            # which a DateField refuses (the link led to ?e=1).
            params = QueryDict(self.clear_all_filters_qs.lstrip("?"), mutable=True)
            for suffix in ("__gte", "__lt"):
                params.pop(f"{self.date_hierarchy}{suffix}", None)
            self.clear_all_filters_qs = f"?{params.urlencode()}"
        return queryset


class PlainLinksMixin:
    """Django shows a read-only foreign key as a link to the related object's page, whether
    or not the user may open it (a manager may not open operators or logins): for such a
    user the value is plain text."""

    def _plain_swaps(self, request, obj, names) -> dict[str, str]:
        swaps = {}
        for name in names:
            if not isinstance(name, str):
                continue
            try:
                field = self.model._meta.get_field(name)
            except FieldDoesNotExist:
                continue
            if not field.many_to_one and not field.one_to_one:
                continue
            target = self.admin_site._registry.get(field.related_model)
            if target is not None and target.has_view_permission(request):
                continue
            plain = f"{name}_plain"
            if not hasattr(self, plain):
                setattr(self, plain, _plain_display(name, field.verbose_name))
            swaps[name] = plain
        return swaps

    def __init_subclass__(cls, **kwargs):
        # An admin's own get_readonly_fields (they rarely call super) gets the plain names.
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("get_readonly_fields")
        if own is not None:
            cls.get_readonly_fields = _with_plain_names(own)

    def get_readonly_fields(self, request, obj=None):
        return self._plus_plain_names(request, obj, super().get_readonly_fields(request, obj))

    def _plus_plain_names(self, request, obj, readonly) -> list:
        readonly = list(readonly)
        swaps = self._plain_swaps(request, obj, readonly)
        return readonly + [plain for plain in swaps.values() if plain not in readonly]

    def _shown_read_only(self, request, obj, fieldsets) -> list:
        readonly = list(self.get_readonly_fields(request, obj))
        if obj is not None and not self.has_change_permission(request, obj):
            readonly += flatten_fieldsets(fieldsets)
        return readonly

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        swaps = self._plain_swaps(request, obj, self._shown_read_only(request, obj, fieldsets))
        if not swaps:
            return fieldsets
        result = []
        for name, options in fieldsets:
            fields = []
            for f in options["fields"]:
                f = swaps.get(f, f) if isinstance(f, str) else f
                if f not in fields:
                    fields.append(f)
            result.append((name, {**options, "fields": fields}))
        return result


def _with_plain_names(get_readonly_fields):
    def wrapped(self, request, obj=None):
        return self._plus_plain_names(request, obj, get_readonly_fields(self, request, obj))

    return wrapped


def _plain_display(name: str, label: str):
    def display(obj):
        value = getattr(obj, name, None)
        return "-" if value is None else str(value)

    display.short_description = label
    return display


class OperatorScopedAdmin(PlainLinksMixin, HandEditedRequestsMixin, admin.ModelAdmin):
    """Subclasses set `operator_path` (the lookup from the model to its operator)."""

    operator_path = "operator"

    def has_add_permission(self, request):
        # A staff user without an operator sees nothing, and adds nothing: a new row would
        # belong to no operator.
        if user_operator_id(request.user) == -1:
            return False
        return super().has_add_permission(request)

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request.user, self.operator_path)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        self._scope_choices(field, db_field, request)
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        self._scope_choices(field, db_field, request)
        return field

    def _scope_choices(self, field, db_field, request):
        if field is None or not hasattr(field, "queryset"):
            return
        path = OPERATOR_PATHS.get(db_field.related_model._meta.label_lower)
        if path is not None:
            field.queryset = scope_queryset(field.queryset, request.user, path)

    def save_model(self, request, obj, form, change):
        # A manager's new rows belong to their operator, whatever the form held.
        operator_id = user_operator_id(request.user)
        if (
            operator_id is not None
            and self.operator_path == "operator"
            and hasattr(obj, "operator_id")
        ):
            obj.operator_id = operator_id
        super().save_model(request, obj, form, change)

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser and self.operator_path == "operator":
            exclude.append("operator")
        return exclude


class OperatorScopedInline:
    """Mixin for inlines: scope foreign-key choices to the manager's operator."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        path = OPERATOR_PATHS.get(db_field.related_model._meta.label_lower)
        if field is not None and path is not None and hasattr(field, "queryset"):
            field.queryset = scope_queryset(field.queryset, request.user, path)
        return field


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A related-object list filter that offers only the manager's operator's objects
    (Django's own filter lists every row of the related table)."""

    def field_choices(self, field, request, model_admin):
        related = field.related_model
        queryset = related._default_manager.all()
        path = OPERATOR_PATHS.get(related._meta.label_lower)
        if path is not None:
            queryset = scope_queryset(queryset, request.user, path)
        elif user_operator_id(request.user) is not None:
            queryset = queryset.none()  # a model with no known operator: offer nothing
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            queryset = queryset.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in queryset]


class OperatorOwnedAdmin(OperatorScopedAdmin):
    """For models with an `operator` field: a manager's form has no operator field, so the
    row is bound to the manager's operator before validation, and the per-operator unique
    constraints (e.g. a brand's name) are checked as form errors instead of failing on save."""

    superuser_list_filter: tuple = ()

    def get_form(self, request, obj=None, **kwargs):
        form_class = super().get_form(request, obj, **kwargs)
        operator_id = user_operator_id(request.user)
        if operator_id is None:
            return form_class

        class OperatorBoundForm(form_class):
            def _post_clean(self):
                self.instance.operator_id = operator_id
                super()._post_clean()

            def _get_validation_exclusions(self):
                exclude = super()._get_validation_exclusions()
                exclude.discard("operator")
                return exclude

        OperatorBoundForm.__name__ = form_class.__name__
        return OperatorBoundForm

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if user_operator_id(request.user) is None:
            return fieldsets
        # A manager's rows are their operator's: the field is not shown at all.
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "operator"]})
            for name, options in fieldsets
        ]

    def get_list_filter(self, request):
        # Only a superuser, who sees several operators, filters by operator.
        own = tuple(super().get_list_filter(request))
        if request.user.is_superuser:
            return self.superuser_list_filter + own
        return own
