"""Routes of compat.floyd.jobs (see compat.floyd.urls for those it shares)."""

from django.urls import URLPattern, path

from compat.floyd import jobs

urlpatterns: list[URLPattern] = [
    path("experiments/", jobs.ExperimentListView.as_view()),
    path("experiments/run_module/", jobs.RunModuleView.as_view()),
    path("experiments/cancel/<str:identifier>", jobs.ExperimentCancelView.as_view()),
    path("experiments/restart/<str:identifier>", jobs.ExperimentRestartView.as_view()),
    path(
        "experiments/<str:owner>/projects/<str:name>/<str:number>",
        jobs.ExperimentByNameView.as_view(),
    ),
    path("experiments/<str:identifier>", jobs.ExperimentView.as_view()),
    path("taskinstances/<str:identifier>", jobs.TaskInstanceView.as_view()),
]
