from django.urls import path

from renkei.graphql.widgets import views

urlpatterns = [
    path("frame/<int:token_id>/", views.widget_frame, name="widget_frame"),
]
