from django.contrib.auth import views as auth_views
from django.urls import path

from renkei.site import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("verify/", views.verify_second_factor, name="verify"),
]
