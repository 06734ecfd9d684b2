"""Glue triggers that fire: on demand, on a schedule, and when jobs or crawls end.

A Glue *trigger* starts jobs and crawlers (its ``Actions``). moto keeps the
trigger records and their state (``CREATED``, ``ACTIVATED``,
``DEACTIVATED``) but never fires one. Here:

- ``ON_DEMAND``: ``StartTrigger`` runs its actions at once;
- ``SCHEDULED``: once ``ACTIVATED``, it fires at every time its cron
  expression names, on the stack's clock (``cron(0 2 * * ? *)`` is 02:00 UTC
  daily; a notebook that freezes and advances the clock sees it fire without
  waiting the real hours);
- ``CONDITIONAL``: once ``ACTIVATED``, it fires when the runs and crawls its
  ``Predicate`` watches end in the states it names: ``Logical`` ``ANY`` on the
  first of them, ``AND`` when every condition has been met since it last
  fired. Runs that ended before the watcher started do not count.

Actions go through the Glue API (``StartJobRun`` with the action's
``Arguments``, ``StartCrawler``), as Glue's own scheduler calls them. What
fired, when and with what answer is kept in :attr:`Triggers.fired`.

**Workflows**: ``StartWorkflowRun`` fires the workflow's start trigger (its
``ON_DEMAND`` or ``SCHEDULED`` one); the workflow's ``CONDITIONAL`` triggers
fire on the ends of that run's own jobs and crawls, and jobs get
``--WORKFLOW_NAME`` and ``--WORKFLOW_RUN_ID``. The run is ``COMPLETED`` when
nothing it started still runs and nothing more fired; ``GetWorkflowRun`` counts
its actions in ``Statistics``.

Not emulated: ``EVENT`` triggers (EventBridge events into a workflow),
``EventBatchingCondition``, and cron's ``L``, ``W`` and ``#``.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import errors

JOB_DONE = ("SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR")
CRAWL_STATE = {"COMPLETED": "SUCCEEDED", "STOPPED": "CANCELLED", "FAILED": "FAILED"}
DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
MONTHS = {m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP",
                                      "OCT", "NOV", "DEC"), start=1)}
POLL_SECONDS = 0.5       # how often ended runs and crawls are looked for


# ----------------------------------------------------------------------- cron
@dataclass(frozen=True)
class Cron:
    """A Glue (and EventBridge) cron expression: minutes hours day-of-month month day-of-week year."""
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None          # None: '?' or '*' (any day of the month)
    months: frozenset[int]
    weekdays: frozenset[int] | None      # 1 = Sunday ... 7 = Saturday; None: any
    years: frozenset[int] | None

    def matches(self, t: datetime) -> bool:
        weekday = (t.isoweekday() % 7) + 1          # Monday=1 in ISO -> 2; Sunday=7 -> 1
        return (t.minute in self.minutes and t.hour in self.hours and t.month in self.months
                and (self.days is None or t.day in self.days)
                and (self.weekdays is None or weekday in self.weekdays)
                and (self.years is None or t.year in self.years))

    def next_after(self, t: datetime) -> datetime:
        """The first whole minute strictly after ``t`` that the expression names."""
        candidate = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = candidate + timedelta(days=366 * 5)
        while candidate < limit:
            if candidate.month not in self.months or (self.years is not None and candidate.year not in self.years):
                candidate = (candidate.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            weekday = (candidate.isoweekday() % 7) + 1
            if (self.days is not None and candidate.day not in self.days) or \
                    (self.weekdays is not None and weekday not in self.weekdays):
                candidate = candidate.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0) + timedelta(hours=1)
                continue
            if candidate.minute in self.minutes:
                return candidate
            candidate += timedelta(minutes=1)
        raise errors.InvalidInputException("The schedule expression never fires")


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int] | None:
    if text in ("*", "?"):
        return None
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(part, names)
            end = high if step > 1 else start
        if not (low <= start <= high and low <= end <= high) or step < 1:
            raise ValueError(part)
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    return int(text)


def parse_cron(expression: str) -> Cron:
    """``cron(15 12 * * ? *)`` -> :class:`Cron`; anything else -> InvalidInputException."""
    match = re.fullmatch(r"\s*cron\((.*)\)\s*", expression or "")
    fields = match.group(1).split() if match else []
    if len(fields) != 6:
        raise errors.InvalidInputException(f"Invalid schedule expression: {expression!r} "
                                           "(expected cron(Minutes Hours Day-of-month Month Day-of-week Year))")
    minutes, hours, days, months, weekdays, years = fields
    if days != "?" and weekdays != "?":
        raise errors.InvalidInputException(f"Invalid schedule expression: {expression!r} "
                                           "(one of day-of-month and day-of-week must be '?')")
    try:
        return Cron(_field(minutes, 0, 59) or frozenset(range(60)), _field(hours, 0, 23) or frozenset(range(24)),
                    _field(days, 1, 31), _field(months, 1, 12, MONTHS) or frozenset(range(1, 13)),
                    _field(weekdays, 1, 7, DAYS), _field(years, 1970, 2199))
    except ValueError:
        raise errors.InvalidInputException(f"Invalid schedule expression: {expression!r}") from None


# ----------------------------------------------------------------------- the watcher
class Triggers:
    """Fires the stack's activated SCHEDULED and CONDITIONAL triggers from one background thread.

    ``backends()`` yields moto's Glue backends (one per Region in use);
    ``crawls(region)`` the crawl records of ``engine.Engine`` by crawler.
    """

    def __init__(self, ctx, backends, crawls):
        self.ctx = ctx
        self._backends = backends
        self._crawls = crawls
        self.fired: list[dict] = []
        self._next: dict[tuple[str, str], datetime] = {}          # scheduled trigger -> next firing
        self._met: dict[tuple[str, str], set[int]] = {}           # conditional trigger -> conditions met
        self._seen: set[tuple] | None = None                      # ended runs and crawls already counted
        self.workflow_runs: dict[str, WorkflowRun] = {}
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def ensure_running(self) -> None:
        """Start the watcher (once): called when a trigger is activated."""
        if self._thread is None:
            self.ctx.clock.watch(self._wake)
            self._thread = threading.Thread(target=self._loop, name="glue-triggers", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        with self._wake:
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self.ctx.clock.unwatch(self._wake)

    # -- firing ------------------------------------------------------------------
    def fire(self, region: str, trigger, reason: str, workflow_run: "WorkflowRun | None" = None) -> list[dict]:
        """Start every action of ``trigger`` through the Glue API; what each answered.

        In a workflow run, jobs get ``--WORKFLOW_NAME`` and ``--WORKFLOW_RUN_ID`` (as Glue passes
        them, so a script can read the run's properties) and every action joins the run."""
        glue = self.ctx.client("glue", region_name=region)
        results = []
        for action in trigger.actions:
            spec = action.as_dict()
            try:
                if spec.get("JobName"):
                    kwargs = {"JobName": spec["JobName"]}
                    for key in ("Arguments", "Timeout", "SecurityConfiguration", "NotificationProperty"):
                        if spec.get(key):
                            kwargs[key] = spec[key]
                    if workflow_run is not None:
                        kwargs["Arguments"] = {**kwargs.get("Arguments", {}), "--WORKFLOW_NAME": workflow_run.name,
                                               "--WORKFLOW_RUN_ID": workflow_run.run_id}
                    answer = {"JobRunId": glue.start_job_run(**kwargs)["JobRunId"]}
                    if workflow_run is not None:
                        workflow_run.actions.append(("job", spec["JobName"], answer["JobRunId"]))
                else:
                    glue.start_crawler(Name=spec["CrawlerName"])
                    answer = {"CrawlerName": spec["CrawlerName"]}
                    if workflow_run is not None:
                        crawl = self._crawls(region)[spec["CrawlerName"]][-1]
                        workflow_run.actions.append(("crawler", spec["CrawlerName"], crawl.crawl_id))
            except Exception as exc:      # noqa: BLE001 - a refused action is recorded, as Glue logs it
                answer = {"Error": getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)}
            results.append({"Trigger": trigger.name, "Reason": reason, "At": self.ctx.clock.now(),
                            **{k: spec[k] for k in ("JobName", "CrawlerName") if spec.get(k)}, **answer})
        self.fired.extend(results)
        return results

    # -- the loop ----------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping:
            try:
                self._tick()
            except Exception:            # noqa: BLE001 - one bad tick must not end the watcher
                pass
            with self._wake:
                if not self._stopping:
                    self._wake.wait(timeout=POLL_SECONDS)

    def _ended(self, region: str, backend) -> list[tuple]:
        """Every ended job run and crawl: (kind, name, id, state) with Glue's state names."""
        ended = []
        for job in list(backend.jobs.values()):
            for run in list(job.job_runs):
                state = run.status
                if state in JOB_DONE:
                    ended.append(("job", job.name, run.job_run_id, state))
        for name, crawls in self._crawls(region).items():
            for crawl in crawls:
                if crawl.state in CRAWL_STATE:
                    ended.append(("crawler", name, crawl.crawl_id, CRAWL_STATE[crawl.state]))
        return ended

    def _tick(self) -> None:
        first = self._seen is None
        seen = self._seen if self._seen is not None else set()
        for backend in self._backends():
            region = backend.region_name
            new = [e for e in self._ended(region, backend) if e not in seen]
            seen.update(new)
            now = self.ctx.clock.now()
            for trigger in list(backend.triggers.values()):
                key = (region, trigger.name)
                if trigger.state != "ACTIVATED":
                    self._next.pop(key, None)
                    self._met.pop(key, None)
                    continue
                if trigger.trigger_type == "SCHEDULED":
                    self._scheduled(region, trigger, key, now)
                elif trigger.trigger_type == "CONDITIONAL" and not first and not trigger.workflow_name:
                    self._conditional(region, trigger, key, new)
            for run in [r for r in self.workflow_runs.values() if r.region == region and r.status == "RUNNING"]:
                self._advance(backend, run)
        self._seen = seen

    def _scheduled(self, region, trigger, key, now: datetime) -> None:
        cron = parse_cron(trigger.schedule)
        due = self._next.setdefault(key, cron.next_after(now))
        fired = 0
        while now >= due and fired < 100:       # a clock advanced by days passes several times
            self.fire(region, trigger, f"schedule {trigger.schedule} at {due:%Y-%m-%d %H:%M} UTC")
            due, fired = cron.next_after(due), fired + 1
        self._next[key] = due if now < due else cron.next_after(now)

    def _conditional(self, region, trigger, key, new: list[tuple], workflow_run: "WorkflowRun | None" = None) -> None:
        predicate = trigger.predicate.as_dict() if trigger.predicate else {}
        conditions = predicate.get("Conditions", [])
        met = (workflow_run.met if workflow_run is not None else self._met).setdefault(key, set())
        for index, cond in enumerate(conditions):
            for kind, name, _, state in new:
                if kind == "job" and cond.get("JobName") == name and cond.get("State") == state:
                    met.add(index)
                if kind == "crawler" and cond.get("CrawlerName") == name and cond.get("CrawlState") == state:
                    met.add(index)
        logical = predicate.get("Logical", "AND")
        if conditions and (met if logical == "ANY" else len(met) == len(conditions)):
            met.clear()
            self.fire(region, trigger, f"predicate {logical} met", workflow_run)

    # -- workflows -----------------------------------------------------------------
    def start_workflow_run(self, backend, workflow_name: str, run_id: str) -> "WorkflowRun":
        """A workflow run: its start trigger (the workflow's ON_DEMAND or SCHEDULED trigger) fires
        now; its CONDITIONAL triggers then fire on the ends of *this run's* jobs and crawls."""
        run = WorkflowRun(backend.region_name, workflow_name, run_id)
        self.workflow_runs[run_id] = run
        starters = [t for t in backend.triggers.values()
                    if t.workflow_name == workflow_name and t.trigger_type in ("ON_DEMAND", "SCHEDULED")]
        for trigger in starters:
            self.fire(backend.region_name, trigger, "StartWorkflowRun", run)
        self.ensure_running()
        return run

    def _advance(self, backend, run: "WorkflowRun") -> None:
        """Fire the run's conditional triggers on its newly ended actions; end the run when
        nothing is left running and nothing more fired."""
        states = self._action_states(backend, run)
        new = [(kind, name, action_id, state) for (kind, name, action_id), state in states.items()
               if state in JOB_DONE + tuple(CRAWL_STATE.values()) and (kind, name, action_id) not in run.counted]
        run.counted.update((kind, name, action_id) for kind, name, action_id, _ in new)
        fired_before = len(run.actions)
        for trigger in [t for t in backend.triggers.values()
                        if t.workflow_name == run.name and t.trigger_type == "CONDITIONAL" and t.state == "ACTIVATED"]:
            self._conditional(run.region, trigger, (run.region, trigger.name), new, run)
        running = [a for a, state in self._action_states(backend, run).items() if state not in JOB_DONE
                   and state not in CRAWL_STATE.values()]
        if not running and len(run.actions) == fired_before:
            run.status = "COMPLETED"
            run.completed_on = self.ctx.clock.now()

    def _action_states(self, backend, run: "WorkflowRun") -> dict[tuple, str]:
        states = {}
        crawls = {c.crawl_id: c for found in self._crawls(run.region).values() for c in found}
        for kind, name, action_id in run.actions:
            if kind == "job":
                job = backend.jobs.get(name)
                found = next((r for r in (job.job_runs if job else []) if r.job_run_id == action_id), None)
                states[(kind, name, action_id)] = found.status if found else "ERROR"
            else:
                crawl = crawls.get(action_id)
                states[(kind, name, action_id)] = CRAWL_STATE.get(crawl.state, "RUNNING") if crawl else "FAILED"
        return states

    def statistics(self, backend, run_id: str) -> dict | None:
        """GetWorkflowRun's ``Statistics``, counted from the run's actions."""
        run = self.workflow_runs.get(run_id)
        if run is None:
            return None
        states = list(self._action_states(backend, run).values())
        count = states.count
        return {"TotalActions": len(states), "RunningActions": len([s for s in states if s in ("STARTING", "RUNNING",
                                                                                                "STOPPING", "WAITING")]),
                "SucceededActions": count("SUCCEEDED"), "FailedActions": count("FAILED"),
                "StoppedActions": count("STOPPED") + count("CANCELLED"), "TimeoutActions": count("TIMEOUT"),
                "ErroredActions": count("ERROR"), "WaitingActions": 0}


@dataclass
class WorkflowRun:
    """One run of a workflow: the actions its triggers started, and what has been counted."""
    region: str
    name: str
    run_id: str
    status: str = "RUNNING"
    completed_on: datetime | None = None
    actions: list[tuple[str, str, str]] = field(default_factory=list)     # (job|crawler, name, run or crawl id)
    counted: set[tuple[str, str, str]] = field(default_factory=set)
    met: dict[tuple[str, str], set[int]] = field(default_factory=dict)
