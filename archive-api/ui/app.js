// Sign-in, the screens each role may use, the language switch and the notices.

import * as api from './api.js';
import { byId } from './dom.js';
import { t, translate, setLanguage, currentLanguage, onLanguageChange } from './i18n.js';
import * as desk from './desk.js';
import * as archive from './archive.js';
import * as dashboard from './dashboard.js';
import * as accounts from './accounts.js';

/** The screens each role may use, the first one shown after sign-in. */
const SCREENS = {
  clerk: ['desk'],
  archivist: ['archive', 'dashboard'],
  admin: ['accounts', 'dashboard'],
  system: [],
};

const state = { me: null, screen: null };

/** Shows a message to the person: `kind` is `error` or `info`. */
export function notify(message, kind = 'info') {
  const box = byId('notice');
  box.textContent = message;
  box.className = `notice ${kind}`;
  box.hidden = !message;
}

/** Shows an API failure in words. */
export function report(error) {
  if (error instanceof api.ApiError && error.status === 0) notify(t('error.network'), 'error');
  else if (error instanceof api.ApiError && error.status === 401) notify(t('error.session'), 'error');
  else notify(t('error', { message: error.message }), 'error');
}

/** The signed-in account: `{name, role, units}`. */
export function me() {
  return state.me;
}

/** Shows one screen (`signin`, `desk`, `archive`, `viewer`, `dashboard`, `accounts`, `none`). */
export function show(screen) {
  state.screen = screen;
  for (const section of document.querySelectorAll('main > .screen')) {
    section.hidden = section.id !== `screen-${screen}`;
  }
  const tab = screen === 'viewer' ? 'archive' : screen;
  for (const button of document.querySelectorAll('#nav .tab')) {
    if (button.dataset.screen === tab) button.setAttribute('aria-current', 'page');
    else button.removeAttribute('aria-current');
  }
  const heading = document.querySelector(`#screen-${screen} h2`);
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

function showWho() {
  const who = byId('who');
  who.textContent = state.me ? t('who', { name: state.me.name, role: t(`role.${state.me.role}`) }) : '';
}

async function signIn() {
  let account;
  try {
    account = await api.json('/v1/me');
  } catch (error) {
    api.setToken(null);
    signedOut();
    if (error instanceof api.ApiError && error.status === 401) notify(t('signin.invalid'), 'error');
    else report(error);
    return;
  }
  state.me = account;
  if (account.must_change_password) {
    // A password an administrator set: nothing opens until the person has made it their own.
    byId('nav').hidden = true;
    byId('signout').hidden = false;
    byId('password-open').hidden = true;
    showWho();
    show('none');
    byId('screen-none').hidden = true;
    notify('');
    openPasswordDialog(true);
    return;
  }
  const allowed = SCREENS[account.role] || [];
  for (const button of document.querySelectorAll('#nav .tab')) {
    button.hidden = !allowed.includes(button.dataset.screen);
  }
  byId('nav').hidden = allowed.length < 2;
  byId('signout').hidden = false;
  byId('password-open').hidden = sessionStorage.getItem(SESSION_KEY) !== 'password';
  showWho();
  notify('');
  const context = { notify, report, show, me };
  if (allowed.includes('desk')) desk.start(context);
  if (allowed.includes('archive')) archive.start(context);
  if (allowed.includes('dashboard')) dashboard.start(context);
  if (allowed.includes('accounts')) accounts.start(context);
  show(allowed[0] || 'none');
}

function signedOut() {
  state.me = null;
  byId('nav').hidden = true;
  byId('signout').hidden = true;
  byId('password-open').hidden = true;
  showWho();
  show('signin');
}

/** Whether the open password dialog must be completed (a password an administrator set) before work. */
let passwordRequired = false;

/** Opens the password dialog; `required`: it cannot be dismissed, only completed or left by signing out. */
function openPasswordDialog(required) {
  passwordRequired = required;
  byId('password-required').hidden = !required;
  byId('password-cancel').textContent = t(required ? 'signout' : 'password.cancel');
  byId('password-dialog').showModal();
  byId('password-current').focus();
}

/** The dialog in which a person changes their own password; the answer's new session replaces this one. */
function setUpPasswordChange() {
  const dialog = byId('password-dialog');
  const error = byId('password-error');
  const close = () => {
    for (const id of ['password-current', 'password-new', 'password-again']) byId(id).value = '';
    error.textContent = '';
    dialog.close();
    byId('password-open').focus();
  };
  byId('password-open').addEventListener('click', () => openPasswordDialog(false));
  dialog.addEventListener('cancel', (event) => {
    if (passwordRequired) event.preventDefault();
  });
  // Some browsers close a modal dialog on a second Escape whatever its cancel handler says: a required
  // change opens again (the server refuses everything else until it is done).
  dialog.addEventListener('close', () => {
    if (passwordRequired && api.token()) {
      dialog.showModal();
      return;
    }
    // However it closed (Escape included), what was typed in it goes.
    for (const id of ['password-current', 'password-new', 'password-again']) byId(id).value = '';
    error.textContent = '';
  });
  byId('password-cancel').addEventListener('click', () => {
    if (passwordRequired) byId('signout').click();
    else close();
  });
  byId('password-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const current = byId('password-current').value;
    const password = byId('password-new').value;
    if ([...password].length < 8) {
      error.textContent = t('password.short');
      byId('password-new').focus();
      return;
    }
    if (password !== byId('password-again').value) {
      error.textContent = t('password.mismatch');
      byId('password-again').focus();
      return;
    }
    try {
      const session = await api.json('/v1/me/password', 'PUT', { current, password });
      api.setToken(session.token);
      const required = passwordRequired;
      passwordRequired = false;
      close();
      if (required) await signIn();
      notify(t('password.changed'));
    } catch (failure) {
      if (failure instanceof api.ApiError && failure.code === 'wrong-password') {
        error.textContent = t('password.wrong');
        byId('password-current').focus();
      } else {
        error.textContent = failure.message;
      }
    }
  });
}

/** Marks a token that came from signing in with a password (this tab only). */
const SESSION_KEY = 'sohoa.session';

function setUp() {
  byId('language').value = currentLanguage();
  translate();
  byId('language').addEventListener('change', (event) => setLanguage(event.target.value));
  onLanguageChange(showWho);

  byId('signin-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = byId('signin-name').value.trim();
    const password = byId('signin-password').value;
    if (!name || !password) {
      notify(t('signin.emptyPassword'), 'error');
      byId(name ? 'signin-password' : 'signin-name').focus();
      return;
    }
    let session;
    try {
      session = await api.json('/v1/sessions', 'POST', { name, password });
    } catch (error) {
      byId('signin-password').value = '';
      byId('signin-password').focus();
      if (error instanceof api.ApiError && error.code === 'sign-in-failed') notify(t('signin.failed'), 'error');
      else if (error instanceof api.ApiError && error.code === 'too-many-attempts') notify(t('signin.tooMany'), 'error');
      else report(error);
      return;
    }
    byId('signin-password').value = '';
    api.setToken(session.token);
    sessionStorage.setItem(SESSION_KEY, 'password');
    await signIn();
  });
  byId('token-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = byId('token').value.trim();
    if (!value) {
      notify(t('signin.empty'), 'error');
      byId('token').focus();
      return;
    }
    api.setToken(value);
    sessionStorage.removeItem(SESSION_KEY);
    byId('token').value = '';
    await signIn();
  });
  byId('signout').addEventListener('click', async () => {
    // A token from signing in with a password stops working on the server too; a pasted token is only
    // forgotten here (it may be a system's or the administrator's, still needed elsewhere).
    if (sessionStorage.getItem(SESSION_KEY) === 'password') {
      try {
        await api.request('/v1/sessions/current', { method: 'DELETE' });
      } catch {
        // Already invalid, or the server is away: forgetting it here is what matters most.
      }
    }
    sessionStorage.removeItem(SESSION_KEY);
    api.setToken(null);
    // Nothing of the last person's work stays on screen.
    window.location.reload();
  });
  setUpPasswordChange();
  for (const button of document.querySelectorAll('#nav .tab')) {
    button.addEventListener('click', () => show(button.dataset.screen));
  }
  api.whenUnauthorized(() => {
    api.setToken(null);
    signedOut();
    notify(t('error.session'), 'error');
  });

  if (api.token()) signIn();
  else signedOut();
}

setUp();
