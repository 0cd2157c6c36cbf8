// Accounts, for administrators: the people who sign in (and the systems that use tokens), a form to create
// a person's account with a first password, and per account: set a new password, disable or enable.

import * as api from './api.js';
import { byId, el, fill } from './dom.js';
import { t, onLanguageChange } from './i18n.js';

let context;
let started = false;
let accounts = [];
/** The account whose password the dialog sets. */
let resetting = null;
/** The button to give the focus back to once the list is drawn again: `{name, button}` (a class). */
let focusAfter = null;

export function start(ctx) {
  context = ctx;
  if (started) return;
  started = true;
  byId('account-form').addEventListener('submit', create);
  byId('reset-form').addEventListener('submit', reset);
  byId('reset-cancel').addEventListener('click', () => byId('reset-dialog').close());
  // However the dialog closes (Escape included), what was typed in it goes.
  byId('reset-dialog').addEventListener('close', resetClosed);
  onLanguageChange(render);
  load();
}

async function load() {
  try {
    accounts = await api.json('/v1/accounts');
    render();
  } catch (error) {
    context.report(error);
  }
}

/** A password the server will take, or the reason it will not (said before anything is created). */
function passwordProblem(password, again) {
  if ([...password].length < 8) return t('password.short');
  if (again !== undefined && password !== again) return t('password.mismatch');
  return null;
}

async function create(event) {
  event.preventDefault();
  const error = byId('account-error');
  error.textContent = '';
  const name = byId('a-name').value.trim();
  const role = byId('a-role').value;
  const password = byId('a-password').value;
  const units = byId('a-units').value.split(/[\s,;]+/).filter(Boolean);
  if (!/^[A-Za-z0-9._@-]{1,64}$/.test(name)) {
    error.textContent = t('accounts.badName');
    byId('a-name').focus();
    return;
  }
  const problem = passwordProblem(password);
  if (problem) {
    error.textContent = problem;
    byId('a-password').focus();
    return;
  }
  try {
    await api.json('/v1/accounts', 'POST', { name, role, units: units.length ? units : ['*'] });
  } catch (failure) {
    error.textContent = failure.status === 409 ? t('accounts.taken', { name }) : failure.message;
    byId(failure.status === 409 ? 'a-name' : 'a-units').focus();
    return;
  }
  try {
    await api.json(`/v1/accounts/${encodeURIComponent(name)}/password`, 'PUT', { password });
  } catch (failure) {
    // The account exists without a password: say so, and leave it in the list to set one.
    error.textContent = t('accounts.noPassword', { message: failure.message });
    await load();
    return;
  }
  for (const id of ['a-name', 'a-units', 'a-password']) byId(id).value = '';
  context.notify(t('accounts.created', { name, role: t(`role.${role}`) }));
  await load();
  byId('a-name').focus();
}

function openReset(account) {
  byId('account-error').textContent = '';
  resetting = account.name;
  byId('reset-title').textContent = t('accounts.resetTitle', { name: account.name });
  byId('reset-error').textContent = '';
  byId('reset-password').value = '';
  byId('reset-again').value = '';
  byId('reset-dialog').showModal();
  byId('reset-password').focus();
}

function resetClosed() {
  byId('reset-password').value = '';
  byId('reset-again').value = '';
  byId('reset-error').textContent = '';
  if (resetting) focusButton(resetting, 'set-password');
  resetting = null;
}

/** Puts the focus on `button` (a class) in the row of account `name`, as the list is drawn now. */
function focusButton(name, button) {
  const found = document.querySelector(`#accounts-table tr[data-name="${CSS.escape(name)}"] button.${button}`);
  if (found) found.focus();
}

async function reset(event) {
  event.preventDefault();
  const error = byId('reset-error');
  const password = byId('reset-password').value;
  const problem = passwordProblem(password, byId('reset-again').value);
  if (problem) {
    error.textContent = problem;
    byId('reset-password').focus();
    return;
  }
  const name = resetting;
  try {
    await api.json(`/v1/accounts/${encodeURIComponent(name)}/password`, 'PUT', { password });
  } catch (failure) {
    error.textContent = failure.message;
    return;
  }
  byId('reset-dialog').close();
  context.notify(t('accounts.passwordSet', { name }));
  focusAfter = { name, button: 'set-password' };
  await load();
}

async function setDisabled(account, disabled) {
  byId('account-error').textContent = '';
  try {
    await api.json(`/v1/accounts/${encodeURIComponent(account.name)}`, 'PATCH', { disabled });
    context.notify(t(disabled ? 'accounts.disabledNow' : 'accounts.enabledNow', { name: account.name }));
    focusAfter = { name: account.name, button: disabled ? 'enable' : 'disable' };
    await load();
  } catch (error) {
    context.report(error);
  }
}

function render() {
  const self = context.me()?.name;
  const rows = accounts.map((account) => {
    const person = account.role !== 'system';
    const signIn = account.disabled
      ? t('accounts.disabled')
      : account.must_change_password ? t('accounts.temporary')
        : account.has_password ? t('accounts.withPassword')
          : t(person ? 'accounts.noPasswordYet' : 'accounts.tokens');
    const actions = el('div', { class: 'actions' },
      // One's own password is changed with "Đổi mật khẩu" (setting it here would end this session).
      person && !account.disabled && account.name !== self && el('button', {
        type: 'button',
        class: 'set-password',
        'aria-label': t('accounts.resetFor', { name: account.name }),
        onclick: () => openReset(account),
      }, t('accounts.reset')),
      account.name !== self && el('button', {
        type: 'button',
        class: account.disabled ? 'enable' : 'disable',
        'aria-label': t(account.disabled ? 'accounts.enableFor' : 'accounts.disableFor', { name: account.name }),
        onclick: () => setDisabled(account, !account.disabled),
      }, t(account.disabled ? 'accounts.enable' : 'accounts.disable')));
    return el('tr', { dataset: { name: account.name }, class: account.disabled ? 'disabled' : null },
      el('th', { scope: 'row' }, account.name),
      el('td', {}, t(`role.${account.role}`)),
      el('td', {}, account.units.includes('*') ? t('all') : account.units.join(', ')),
      el('td', { class: 'sign-in' }, signIn),
      el('td', {}, actions));
  });
  fill(document.querySelector('#accounts-table tbody'), rows);
  if (focusAfter) {
    focusButton(focusAfter.name, focusAfter.button);
    focusAfter = null;
  }
}
