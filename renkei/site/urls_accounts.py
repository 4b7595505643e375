from django.contrib.auth import views as auth_views
from django.urls import path

from renkei.site import second_factor, views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("verify/", views.verify_second_factor, name="verify"),
    path("second-factor/", second_factor.account, name="second_factor"),
    path("second-factor/start/", second_factor.start, name="second_factor_start"),
    path("second-factor/confirm/", second_factor.confirm, name="second_factor_confirm"),
    path(
        "second-factor/recovery-codes/",
        second_factor.renew_codes,
        name="second_factor_recovery_codes",
    ),
]
