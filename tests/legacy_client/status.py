"""The client's control code (its ``status`` module), as written for the original."""

import logging

from stream_analysis import AnalysisTask, cleanup

logger = logging.getLogger("status")


def _task_status(task):
    frame_class = task.get_frame_class()
    result = {
        "key": task.key,
        "name": task.name,
        "time_frame_path": task.frame_class_path,
        "duration": frame_class.DURATION.total_seconds(),
        "frame_count": frame_class.count_completed(),
        "avg_time": frame_class.get_average_analysis_time(),
        "running": False,
    }
    job = task.get_rq_job()
    if job:
        result["running"] = True
    return result


def task_status(key=None):
    """
    Returns status if there is a scheduled task with the given key.
    If no key is given, returns a dictionary containing the status of all tasks.
    """
    if key:
        task = AnalysisTask.get(key=key)
        if task:
            return _task_status(task)
    else:
        tasks = AnalysisTask.get()
        result = dict()
        for task in tasks:
            result[task.key] = _task_status(task)
        return result


def cancel_task(key=None):
    """
    Cancels any scheduled task by key.
    If no key is provided, cancels all scheduled tasks.
    """
    if key:
        task = AnalysisTask.get(key=key)
        if task:
            task.cancel()
    else:
        for task in AnalysisTask.get():
            task.cancel()


def schedule_task(key=None, cancel_first=True):
    """
    Schedule a task.
    If no key is given, schedules all configured tasks.
    """
    if key:
        task = AnalysisTask.get(key=key)
        if task:
            task.schedule(cancel_first=cancel_first)
    else:
        for task in AnalysisTask.get():
            task.schedule(cancel_first=cancel_first)


def clean_tweets():
    """Clean old tweets we don't need anymore."""
    cleanup.delay()
