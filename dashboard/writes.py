"""The write side's routes (issue 18): the drift page, its JSON and nav badge; the change form,
its preview and its submission as a merge request; pause and resume of a runner.

Drift is read like every page (a session). Every write is a POST and passes, in this order and
before anything reaches GitLab: the environment is served here (404), the session is an
operator's (403), the form carries the session's CSRF token (403), the request comes from this
site (an Origin, else Sec-Fetch-Site, else Referer naming it: 403), the user's write budget
(429). Then the operator's token must hold the ``api`` scope (else the step-up sign-in), and
GitLab is asked again, with that token, whether the user is still Maintainer+ on the config
project (403 if not). Writes go to GitLab with the operator's own token; every outcome gets an
audit line and a count.
"""

from __future__ import annotations

import dataclasses
import functools
import secrets
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from dashboard.audit import Action, AuditLog, Outcome
from dashboard.auth import WRITE_SCOPE, Auth
from dashboard.changes import (
    ChangeOutcome,
    ChangeRequest,
    ConfigProject,
    Draft,
    Requester,
    draft as make_draft,
    show,
    submit as submit_change,
)
from dashboard.config_edit import FIELDS, Scope
from dashboard.drift import DriftMonitor, run_desired, run_drift
from dashboard.gitlab_client import GitLabClient, GitLabError
from dashboard.observability import Metrics
from dashboard.roles import GitLabUnavailableError, TokenRejectedError, checked
from dashboard.security import csrf_valid
from dashboard.session import Session, SessionStore
from dashboard.settings import OPERATOR_ACCESS, Settings
from dashboard.store import FleetStore
from dashboard.views import templates, view_of
from dashboard.write_guards import KEY, Idempotency, RateLimiter, same_site

NO_STORE = {"Cache-Control": "no-store"}
OPERATORS_ONLY = "Only operators (Maintainer or above on the config project) may change it."
Collector = Callable[[], Coroutine[Any, Any, None]]
TYPES = tuple(dict.fromkeys(f.runner_type for f in FIELDS if f.runner_type))


def _now() -> datetime:
    return datetime.now(UTC)


class RefusedError(Exception):
    """A write stops here with this response (audited by the caller when it is a decision
    about the user, not about the form)."""

    def __init__(self, response: Response, result: Outcome | None = None) -> None:
        super().__init__(result or "refused")
        self.response = response
        self.result = result


class WriteSide:
    """Drift monitors, the desired-config readers and the write routes of the served
    environments. ``gitlab`` is the app's GitLab client: the readers use it with the read
    token, writes with the operator's."""

    def __init__(
        self,
        *,
        settings: Settings,
        stores: Mapping[str, FleetStore],
        gitlab: GitLabClient,
        metrics: Metrics,
        clock: Callable[[], datetime] = _now,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.stores = stores
        self.gitlab = gitlab
        self.clock = clock
        self.monitors = {
            env: DriftMonitor(environment=env, gauge=metrics.drift_items, clock=clock)
            for env in stores
        }
        self.audit = AuditLog(metrics.writes, clock=clock)
        self.limiter = limiter or RateLimiter()
        self.changes: Idempotency[ChangeOutcome] = Idempotency()
        self.pauses: Idempotency[dict[str, Any]] = Idempotency()
        self.target = ConfigProject(
            project=settings.config_project,
            file_path=settings.config_file,
            default_branch=settings.config_branch,
            public_url=settings.public_url,
        )

    def collectors(self) -> list[Collector]:
        """Per served environment: the reader of organization.yaml on the default branch, and
        the drift recomputation that keeps the gauge current."""
        reader = self.gitlab.with_token(self.settings.gitlab_read_token)
        interval = self.settings.gitlab_poll
        found: list[Collector] = []
        for env, monitor in self.monitors.items():
            found.append(
                functools.partial(
                    run_desired,
                    monitor,
                    reader,
                    project=self.target.project,
                    path=self.target.file_path,
                    branch=self.target.default_branch,
                    interval=interval,
                )
            )
            found.append(
                functools.partial(run_drift, monitor, self.stores[env].state, interval=interval)
            )
        return found

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/e/{env}/drift", self.drift_page, name="drift"),
            Route("/e/{env}/drift/badge", self.drift_badge, name="drift_badge"),
            Route("/api/e/{env}/drift", self.drift_json, name="api_drift"),
            Route("/e/{env}/changes/new", self.change_form, name="change_form"),
            Route(
                "/e/{env}/changes/preview",
                self.change_preview,
                methods=["POST"],
                name="change_preview",
            ),
            Route("/e/{env}/changes", self.change_submit, methods=["POST"], name="change_submit"),
            Route(
                "/e/{env}/runners/{runner_id:int}/pause",
                functools.partial(self.set_paused, paused=True),
                methods=["POST"],
                name="runner_pause",
            ),
            Route(
                "/e/{env}/runners/{runner_id:int}/resume",
                functools.partial(self.set_paused, paused=False),
                methods=["POST"],
                name="runner_resume",
            ),
        ]

    # --- reads ----------------------------------------------------------------------------

    def _page(
        self, request: Request, template: str, *, status: int = 200, **context: Any
    ) -> Response:
        store = self.stores[request.path_params["env"]]
        html = (
            templates()
            .get_template(template)
            .render(
                view=view_of(store),
                session=request.state.session,
                demo=self.settings.demo,
                target=self.target,
                **context,
            )
        )
        return HTMLResponse(html, status_code=status, headers=NO_STORE)

    async def drift_page(self, request: Request) -> Response:
        env = request.path_params["env"]
        if env not in self.stores:
            return _not_found()
        report = self.monitors[env].report(self.stores[env].state())
        return self._page(request, "drift.html", title="Drift", page="drift", report=report)

    async def drift_badge(self, request: Request) -> Response:
        env = request.path_params["env"]
        if env not in self.stores:
            return _not_found()
        report = self.monitors[env].report(self.stores[env].state())
        count = str(report.count) if report.compared or report.count else "?"
        kind = "drift" if report.count else ("ok" if report.compared else "unknown")
        body = f'<span class="badge badge-{kind}" title="drift items">{count}</span>'
        return HTMLResponse(body, headers=NO_STORE)

    async def drift_json(self, request: Request) -> Response:
        env = request.path_params["env"]
        if env not in self.stores:
            return JSONResponse({"error": "no such environment"}, 404)
        report = self.monitors[env].report(self.stores[env].state())
        return JSONResponse(report.to_json(), headers=NO_STORE)

    # --- the change form --------------------------------------------------------------------

    async def change_form(self, request: Request) -> Response:
        """The form with the default branch's values; an operator without the write scope
        is sent through the step-up sign-in first."""
        env = request.path_params["env"]
        try:
            session = self._operator(request, env)
            client = await self._writer(request, session, next_path=f"/e/{env}/changes/new")
            draft = await make_draft(
                client, self.target, environment=env, scope="environment", values={}
            )
        except RefusedError as refusal:
            return refusal.response
        except GitLabError as error:
            return self._message(request, "The config project did not answer", error.message, 502)
        return self._form(request, draft, scope="environment", values={}, reason="")

    async def change_preview(self, request: Request) -> Response:
        env = request.path_params["env"]
        try:
            session = await self._checked_post(request, env)
            client = await self._writer(request, session, next_path=f"/e/{env}/changes/new")
        except RefusedError as refusal:
            return refusal.response
        form = await request.form()
        values, scope, reason = _form_values(form)
        try:
            draft = await make_draft(
                client, self.target, environment=env, scope=scope, values=values
            )
        except GitLabError as error:
            return self._message(request, "The config project did not answer", error.message, 502)
        key = secrets.token_urlsafe(24) if draft.submittable else None
        return self._form(request, draft, scope=scope, values=values, reason=reason, key=key)

    async def change_submit(self, request: Request) -> Response:
        env = request.path_params["env"]
        form = await request.form()
        values, scope, reason = _form_values(form)
        key = str(form.get("idempotency_key") or "")
        try:
            session = await self._checked_post(request, env, "change_request")
            if not KEY.match(key):
                raise RefusedError(
                    self._message(request, "Preview first", "Submit from a preview.", 400)
                )
            client = await self._authorized(request, session, env, "change_request")
        except RefusedError as refusal:
            return refusal.response
        change = ChangeRequest(
            target=self.target,
            requester=Requester(user_id=session.user_id, username=session.username),
            environment=env,
            scope=scope,
            values=values,
            reason=reason,
            last_commit_id=str(form.get("last_commit_id") or ""),
        )
        try:
            outcome, repeated = await self.changes.run(
                session.user_id, key, lambda: submit_change(client, change, now=self.clock())
            )
        except GitLabError as error:
            self._audit(session, "change_request", env, "error", detail=error.message)
            return self._message(request, "GitLab did not answer", error.message, 502)
        self._audit(
            session,
            "change_request",
            env,
            "duplicate" if repeated else outcome.result,
            url=outcome.merge_request_url,
            detail=outcome.message,
        )
        if outcome.result == "created":
            return self._page(
                request,
                "change_done.html",
                title="Merge request opened",
                page="drift",
                outcome=outcome,
            )
        status = {"conflict": 409, "invalid": 422, "unchanged": 422}.get(outcome.result, 502)
        if outcome.draft is None or outcome.result == "error":
            return self._message(request, "No merge request opened", outcome.message, status)
        return self._form(
            request,
            outcome.draft,
            scope=scope,
            values=values,
            reason=reason,
            status=status,
            outcome=outcome,
        )

    def _form(
        self,
        request: Request,
        draft: Draft,
        *,
        scope: Scope,
        values: Mapping[str, str],
        reason: str,
        key: str | None = None,
        status: int = 200,
        outcome: ChangeOutcome | None = None,
    ) -> Response:
        shown = {f.key: values.get(f.key, show(draft.current.get(f.key))) for f in FIELDS}
        return self._page(
            request,
            "change.html",
            status=status,
            title="Propose a change",
            page="drift",
            draft=draft,
            fields={f.key: f for f in FIELDS},
            types=TYPES,
            shown=shown,
            scope=scope,
            reason=reason,
            key=key,
            outcome=outcome,
        )

    # --- pause / resume ---------------------------------------------------------------------

    async def set_paused(self, request: Request, *, paused: bool) -> Response:
        """First POST: a confirmation page (GitLab is not called); the confirmed POST pauses
        or resumes the runner as the operator."""
        env = request.path_params["env"]
        action: Action = "pause" if paused else "resume"
        try:
            session = await self._checked_post(request, env, action)
        except RefusedError as refusal:
            return refusal.response
        runner_id = request.path_params["runner_id"]
        runner = next((r for r in self.stores[env].state().runners if r.id == runner_id), None)
        if runner is None:
            return self._message(request, "No such runner", "GitLab does not list it here.", 404)
        form = await request.form()
        key = str(form.get("idempotency_key") or "")
        if form.get("confirm") != "yes" or not KEY.match(key):
            return self._page(
                request,
                "runner_confirm.html",
                title=f"{action.capitalize()} runner {runner.id}",
                page="",
                runner=runner,
                action=action,
                key=secrets.token_urlsafe(24),
            )
        try:
            client = await self._authorized(
                request, session, env, action, next_path=f"/e/{env}/runners/{runner_id}"
            )
            answer, repeated = await self.pauses.run(
                session.user_id, key, lambda: client.set_runner_paused(runner_id, paused)
            )
        except RefusedError as refusal:
            return refusal.response
        except GitLabError as error:
            self._audit(session, action, env, "error", detail=error.message)
            refused = error.status in (401, 403, 404)
            title = "GitLab refused" if refused else "GitLab did not answer"
            return self._message(request, title, error.message, 403 if refused else 502)
        url = f"{self.settings.public_url}/e/{env}/runners/{runner_id}"
        result: Outcome = "duplicate" if repeated else ("paused" if paused else "resumed")
        self._audit(session, action, env, result, url=url)
        now_paused = bool(answer.get("paused", paused))
        return self._page(
            request,
            "runner_done.html",
            title=f"Runner {runner_id} {'paused' if now_paused else 'resumed'}",
            page="",
            runner=runner,
            paused=now_paused,
        )

    # --- the checks -------------------------------------------------------------------------

    def _operator(self, request: Request, env: str) -> Session:
        if env not in self.stores:
            raise RefusedError(_not_found())
        session: Session = request.state.session
        if session.role != "operator":
            raise RefusedError(self._message(request, "Operators only", OPERATORS_ONLY, 403))
        return session

    async def _checked_post(
        self, request: Request, env: str, action: Action | None = None
    ) -> Session:
        """The checks that need no GitLab call: environment, role, CSRF, same site. A refused
        write (``action``) is audited as ``denied`` with the reason."""
        if env not in self.stores:
            raise RefusedError(_not_found())
        session: Session = request.state.session
        if session.role != "operator":
            reason, title, message = "not an operator", "Operators only", OPERATORS_ONLY
        elif not await csrf_valid(request, session):
            reason, title = "missing or wrong CSRF token", "Refused"
            message = "The form was stale or forged (CSRF token); reload the page."
        elif not same_site(request, self.settings.public_url):
            reason, title, message = "cross-site request", "Refused", "Cross-site request refused."
        else:
            return session
        if action:
            self._audit(session, action, env, "denied", detail=reason)
        raise RefusedError(self._message(request, title, message, 403))

    async def _writer(self, request: Request, session: Session, *, next_path: str) -> GitLabClient:
        """A client with the operator's token, once it holds the write scope."""
        if WRITE_SCOPE not in session.tokens.scopes:
            query = urlencode({"scope": WRITE_SCOPE, "next": next_path})
            raise RefusedError(RedirectResponse(f"/auth/login?{query}", status_code=303))
        auth: Auth = request.app.state.auth
        token = await auth.access_token(session)
        if token is None:
            raise RefusedError(RedirectResponse("/auth/login", status_code=303))
        return self.gitlab.with_token(token)

    async def _authorized(
        self,
        request: Request,
        session: Session,
        env: str,
        action: Action,
        *,
        next_path: str | None = None,
    ) -> GitLabClient:
        """Rate limit, write scope, then GitLab's own answer: still Maintainer+ now?"""
        if not self.limiter.allow(session.user_id):
            self._audit(session, action, env, "rate_limited")
            message = "Too many changes in a short time; wait a few minutes."
            raise RefusedError(self._message(request, "Slow down", message, 429))
        client = await self._writer(
            request, session, next_path=next_path or f"/e/{env}/changes/new"
        )
        try:
            level = await checked(
                client.project_member_access(self.settings.config_project, session.user_id)
            )
        except (GitLabUnavailableError, TokenRejectedError) as error:
            self._audit(session, action, env, "error", detail=str(error))
            raise RefusedError(
                self._message(request, "GitLab did not answer", str(error), 502)
            ) from None
        if level is None or level < OPERATOR_ACCESS:
            # No longer an operator; the gate re-checks the whole role at the next request.
            sessions: SessionStore = request.app.state.sessions
            sessions.save(dataclasses.replace(session, role="viewer", roles_checked_at=0.0))
            self._audit(session, action, env, "denied", detail="no longer Maintainer+")
            message = "GitLab says you are no longer Maintainer or above on the config project."
            raise RefusedError(self._message(request, "Operators only", message, 403))
        return client

    def _audit(
        self,
        session: Session,
        action: Action,
        env: str,
        result: Outcome,
        *,
        url: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.audit.record(
            user=session.username,
            user_id=session.user_id,
            action=action,
            environment=env,
            result=result,
            url=url,
            detail=detail,
        )

    def _message(self, request: Request, title: str, message: str, status: int) -> Response:
        if request.path_params.get("env") not in self.stores:
            return HTMLResponse(f"<p>{escape(message)}</p>", status_code=status)
        return self._page(
            request, "write_message.html", status=status, title=title, page="", message=message
        )


def _not_found() -> Response:
    return HTMLResponse("<p>No such environment.</p>", status_code=404, headers=NO_STORE)


def _form_values(form: Mapping[str, Any]) -> tuple[dict[str, str], Scope, str]:
    """The editable fields, the scope and the reason of a submitted change form."""
    values = {f.key: str(form[f.key]) for f in FIELDS if isinstance(form.get(f.key), str)}
    scope: Scope = "base" if form.get("scope") == "base" else "environment"
    reason = form.get("reason")
    return values, scope, reason if isinstance(reason, str) else ""
