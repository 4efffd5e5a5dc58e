"""Sign-in for the dashboard.

With the bundled demo (synthetic data) nobody signs in; a visible banner
says it is synthetic and a "view as" switch shows each role's dashboard.
With a clinic's data every session signs in: a user name and password from
the users file (bcrypt hashes), or the clinic's OIDC provider through
Streamlit's built-in ``st.login`` when ``[auth]`` is configured in
``.streamlit/secrets.toml``.  Sessions expire after 30 idle minutes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from analysis.access import audit, auth
from analysis.sources import DataSource
from ui import pages, safe

SESSION_KEY = "signed_in"
DEMO_ROLE_KEY = "demo_role"


@dataclass
class Session:
    user: str
    role: str
    last_seen: dt.datetime
    method: str  # password | oidc | demo


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def current(source: DataSource) -> Session:
    """The signed-in session; otherwise the only page is the sign-in form.

    ``st.navigation`` is always called, with the sign-in page alone, so no
    other page (nor the ``pages/`` folder) is reachable before signing in.
    """
    if source.is_demo:
        # The "View as" switch itself is drawn by account_controls, after
        # st.navigation; its value is read here, before the pages are chosen.
        role = st.session_state.get(DEMO_ROLE_KEY, auth.ROLES[0])
        return Session("demo", role if role in auth.ROLES else auth.ROLES[0],
                       dt.datetime.now(), "demo")

    session: Session | None = st.session_state.get(SESSION_KEY)
    now = dt.datetime.now()
    if session and auth.expired(session.last_seen, now):
        audit.record(source.path, "sign_out", user=session.user, role=session.role,
                     reason="session expired")
        st.session_state.pop(SESSION_KEY, None)
        st.session_state["sign_in_notice"] = "Your session expired. Please sign in again."
        session = None
    if session:
        session.last_seen = now
        return session
    # The sign-in form answers on every page's address too: a reload or a
    # shared link (/conditions?site=...) keeps its address and filters
    # through the sign-in and opens that page after it, instead of Streamlit's
    # "Page not found".  Every address shows only the form.
    form = lambda: _sign_in_form(source)  # noqa: E731
    addresses = [st.Page(form, title="Sign in", icon=":material/login:", url_path="sign_in",
                         default=True)]
    addresses += [st.Page(form, title="Sign in", icon=":material/login:",
                          url_path=Path(spec.path).stem)
                  for spec in pages.PAGES if not spec.default]
    st.navigation(addresses, position="hidden").run()
    st.stop()


def account_controls(source: DataSource, session: Session) -> None:
    """The session's own sidebar controls: the demo's "View as" switch, or
    who is signed in and the sign-out button.

    Call it after ``st.navigation``.  A widget drawn before it is given
    another identity once the browser names the page it is on, so the first
    change after a page load was lost: choosing "View as: marketing" on the
    demo showed the clinical view again, and the first "Sign out" click did
    nothing (Streamlit 1.67, pages from files)."""
    if session.method == "demo":
        st.sidebar.selectbox(
            "View as", auth.ROLES, key=DEMO_ROLE_KEY,
            help="The demo needs no sign-in. Pick a role to see what it would see.")
        return
    with st.sidebar:
        st.caption(f"Signed in as **{safe.text(session.user)}** ({session.role})")
        if st.button("Sign out", key="sign_out"):
            audit.record(source.path, "sign_out", user=session.user, role=session.role)
            st.session_state.pop(SESSION_KEY, None)
            if session.method == "oidc":
                st.logout()
            st.rerun()


def _sign_in_form(source: DataSource) -> None:
    directory = auth.load_users()
    st.title("Sign in")
    st.caption(f"{safe.text(source.label)}: health data. Access is limited to the clinic's users.")
    notice = st.session_state.pop("sign_in_notice", None)
    if notice:
        st.info(notice)
    if _oidc_configured():
        user = getattr(st, "user", None)
        if user is not None and getattr(user, "is_logged_in", False):
            email = str(user.get("email", "")).lower()
            role = directory.oidc_roles.get(email)
            if role:
                audit.record(source.path, "sign_in", user=email, role=role, method="oidc")
                st.session_state[SESSION_KEY] = Session(email, role, dt.datetime.now(), "oidc")
                st.rerun()
            audit.record(source.path, "sign_in_failed", user=auth.UNKNOWN_USER, method="oidc",
                         attempt=auth.name_key(email), reason="no role for this account")
            st.warning(f"{safe.text(email)} has no role in this dashboard. Ask the clinic's "
                       "administrator.")
        elif st.button("Sign in with the clinic's account", type="primary"):
            st.login()
        st.divider()
    if not directory.users and not _oidc_configured():
        st.warning("No users are set up. An administrator adds them with "
                   "`.venv/bin/python -m analysis users add NAME --role clinical` (see README).")
    with st.form("sign_in"):
        name = st.text_input("User name", key="sign_in_user")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        result = auth.sign_in(source.path, directory, name, password)
        if result.ok:
            st.session_state[SESSION_KEY] = Session(result.user, result.role,
                                                    dt.datetime.now(), "password")
            st.rerun()
        st.error(result.message)


def write_grant(source: DataSource) -> auth.WriteGrant:
    """May this session write?  :func:`analysis.access.auth.may_write` for the
    user signed in to this Streamlit session (the demo's "view as" is no
    sign-in).  Raises :class:`analysis.access.auth.WriteRefused` with the reason."""
    session: Session | None = st.session_state.get(SESSION_KEY)
    signed_in = session is not None and session.method in ("password", "oidc")
    return auth.may_write(source, session.user if session else None,
                          session.role if session else None, signed_in)


def log_page_view(source: DataSource, session: Session, page_title: str, filters_text: str,
                  setting_text: str) -> None:
    """One audit row per page (or filter change) a signed-in user looks at."""
    if source.is_demo:
        return
    key = (page_title, filters_text, setting_text)
    if st.session_state.get("last_logged_view") == key:
        return
    st.session_state["last_logged_view"] = key
    # Queued: the page does not wait on the audit file (audit.record_soon).
    audit.record_soon(source.path, "page_view", user=session.user, role=session.role,
                      page=page_title, filters=filters_text, outcome=setting_text)


def log_download(source: DataSource, what: str, file_name: str) -> None:
    session: Session | None = st.session_state.get(SESSION_KEY)
    user = session.user if session else "demo"
    role = session.role if session else st.session_state.get(DEMO_ROLE_KEY)
    if source.is_demo:
        return
    audit.record(source.path, "download", user=user, role=role, what=what, file=file_name)


def download_button(source: DataSource, label: str, data, file_name: str, mime: str,
                    what: str | None = None, **kwargs):
    """st.download_button that writes an audit row when used."""
    return st.download_button(label, data, file_name=file_name, mime=mime,
                              on_click=log_download, args=(source, what or label, file_name),
                              **kwargs)
