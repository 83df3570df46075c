"""Back office for the tenancy models: operators, brands and the users who manage them.

Every page is scoped by `revvvs.tenancy.OperatorScopedAdmin`: an affiliate manager (a staff
user with an operator) sees and changes only their operator's rows; a superuser sees all.
"""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Permission
from django.db.models import Count, Q

from .models import Brand, Operator, User
from .tenancy import OperatorOwnedAdmin, OperatorScopedAdmin, ScopedRelatedFieldListFilter

admin.site.site_header = "Revvvs back office"
admin.site.site_title = "Revvvs"
admin.site.index_title = "Affiliate programme"


@admin.register(Operator)
class OperatorAdmin(OperatorScopedAdmin):
    operator_path = "pk"
    list_display = ("name", "brand_count", "mask_player_refs", "created_at")
    search_fields = ("name",)
    fields = ("name", "mask_player_refs", "created_at")
    readonly_fields = ("created_at",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(brand_total=Count("brands"))

    @admin.display(description="brands", ordering="brand_total")
    def brand_count(self, obj):
        return obj.brand_total

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Brand)
class BrandAdmin(OperatorOwnedAdmin):
    list_display = (
        "name",
        "brand_id",
        "operator",
        "default_landing_url",
        "attribution_window_days",
    )
    superuser_list_filter = (("operator", ScopedRelatedFieldListFilter),)
    search_fields = ("name", "=id")
    list_select_related = ("operator",)
    fields = (
        "operator",
        "name",
        "brand_id",
        "default_landing_url",
        "allowed_domains",
        "attribution_window_days",
        "created_at",
    )
    readonly_fields = ("brand_id", "created_at")


@admin.register(User)
class UserAdmin(OperatorScopedAdmin, DjangoUserAdmin):
    """Logins. A superuser creates managers (staff users with an operator) and gives them
    permissions; a manager sees only the users of their operator, can never make a
    superuser, move a user to another operator, nor grant a permission they lack."""

    list_display = ("username", "email", "operator", "is_staff", "is_superuser", "is_active")
    list_select_related = ("operator",)
    superuser_fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        (
            "Access",
            {
                "fields": (
                    "operator",
                    "is_active",
                    "is_staff",
                    "is_superuser",
                    "groups",
                    "user_permissions",
                )
            },
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    manager_fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Access", {"fields": ("is_active", "is_staff", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ("last_login", "date_joined")

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            extra = ("operator", "is_staff") if request.user.is_superuser else ("is_staff",)
            return (
                (
                    None,
                    {
                        "classes": ("wide",),
                        "fields": ("username", "usable_password", "password1", "password2") + extra,
                    },
                ),
            )
        return self.superuser_fieldsets if request.user.is_superuser else self.manager_fieldsets

    def get_list_filter(self, request):
        if request.user.is_superuser:
            return (("operator", ScopedRelatedFieldListFilter), "is_staff", "is_superuser")
        return ("is_staff", "is_active")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "user_permissions" and not request.user.is_superuser:
            kwargs["queryset"] = (
                Permission.objects.filter(Q(user=request.user) | Q(group__user=request.user))
                .select_related("content_type")
                .distinct()
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_queryset(self, request):
        users = super().get_queryset(request)
        if not request.user.is_superuser:
            # A superuser tied to an operator is still out of its managers' reach: whoever
            # could set their password would hold every operator's data.
            users = users.filter(is_superuser=False)
        return users

    def save_related(self, request, form, formsets, change):
        # The manager's form offers only the permissions they hold themselves; what a
        # superuser granted beyond that is kept, not dropped by a save that never showed it.
        kept = []
        field = form.fields.get("user_permissions")
        if change and field is not None and not request.user.is_superuser:
            kept = list(form.instance.user_permissions.exclude(pk__in=field.queryset.values("pk")))
        super().save_related(request, form, formsets, change)
        if kept:
            form.instance.user_permissions.add(*kept)

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser:
            # Whatever was posted: a manager's users are never superusers and stay in the
            # manager's operator (OperatorScopedAdmin.save_model sets the operator).
            obj.is_superuser = False
        super().save_model(request, obj, form, change)
