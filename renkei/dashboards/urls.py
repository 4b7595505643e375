"""Pages inside one municipality (mounted at the tenant root)."""

from django.urls import path

from renkei.dashboards import absence, care, notes, privacy_policy, views

app_name = "dashboards"

urlpatterns = [
    path("boards/classes/", views.class_list, name="class_list"),
    path("boards/classes/<int:homeroom_id>/", views.class_board, name="class_board"),
    path("boards/classes/<int:homeroom_id>/teachers/", notes.set_teachers, name="set_teachers"),
    path("boards/students/<int:student_id>/", views.student_board, name="student_board"),
    path("boards/students/<int:student_id>/notes/", notes.add_note, name="add_note"),
    path("boards/students/<int:student_id>/support/", notes.open_case, name="open_case"),
    path(
        "boards/students/<int:student_id>/support/<int:case_id>/",
        notes.add_step,
        name="add_step",
    ),
    path("boards/students/<int:student_id>/assignments/", care.assign, name="assign_pupil"),
    path(
        "boards/students/<int:student_id>/assignments/<int:assignment_id>/remove/",
        care.unassign,
        name="unassign_pupil",
    ),
    path("boards/health/", care.health, name="health"),
    path("boards/health/students/<int:student_id>/", care.health_pupil, name="health_pupil"),
    path("boards/assigned/", care.assigned, name="assigned"),
    path("boards/assigned/<int:student_id>/", care.care_pupil, name="care_pupil"),
    path("boards/long-term-absence/", absence.classification, name="absence_classification"),
    path("analysis/long-term-absence/", views.long_term_absence, name="long_term_absence"),
    path("analysis/long-term-absence/survey.csv", absence.survey_csv, name="absence_survey_csv"),
    path("analysis/schools/", views.school_list, name="school_list"),
    path("analysis/schools/<str:school_code>/", views.school_karte, name="school_karte"),
    path("privacy/", privacy_policy.privacy_policy, name="privacy_policy"),
]
