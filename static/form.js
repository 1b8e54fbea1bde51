// "Call a customer": POST /api/calls/initiate, the answer shown in words (simulation mode
// included) and validation errors next to their field.
import { h, replace } from './dom.js';
import { api } from './api.js';

const AGENT_TYPES = ['sales', 'support', 'booking', 'elevenlabs'];

function field(name, label, input, hint) {
  const error = h('p', { class: 'field-error', id: name + '-error', 'data-testid': name.replace('_', '-') + '-error', role: 'alert' });
  input.setAttribute('id', name);
  input.setAttribute('name', name);
  input.setAttribute('aria-describedby', name + '-error');
  const row = h('div', { class: 'field' }, h('label', { for: name }, label), input, hint && h('p', { class: 'hint' }, hint), error);
  return { row, input, error };
}

export function callForm({ onPlaced }) {
  const phone = field('phone', 'Phone number',
    h('input', { type: 'tel', autocomplete: 'off', placeholder: '+14155550123', required: true, 'data-testid': 'phone-input' }),
    'International format, e.g. +14155550123');
  const customer = field('customer_id', 'Customer id',
    h('input', { type: 'text', autocomplete: 'off', placeholder: 'c-1042', required: true, 'data-testid': 'customer-input' }));
  const agent = field('agent_type', 'Agent type',
    h('input', { type: 'text', list: 'agent-types', value: 'sales', required: true, 'data-testid': 'agent-type-input' }),
    null);
  const fields = { phone, customer_id: customer, agent_type: agent };
  const result = h('div', { class: 'result', 'data-testid': 'initiate-result', role: 'status', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'call-submit' }, 'Call');
  let key = null; // one Idempotency-Key per attempt: a double submit places one call

  for (const f of Object.values(fields)) f.input.addEventListener('input', () => (key = null));

  function show(kind, ...content) {
    result.className = 'result ' + kind;
    result.dataset.kind = kind;
    result.hidden = false;
    replace(result, ...content);
  }

  async function send(ev) {
    ev.preventDefault();
    for (const f of Object.values(fields)) {
      f.error.textContent = '';
      f.input.removeAttribute('aria-invalid');
    }
    result.hidden = true;
    const body = { phone: phone.input.value.trim(), customer_id: customer.input.value.trim(), agent_type: agent.input.value.trim() };
    key = key || (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
    submit.disabled = true;
    submit.textContent = 'Calling…';
    try {
      const r = await api('POST', '/api/calls/initiate', { body, headers: { 'Idempotency-Key': key } });
      key = null;
      const open = h('a', { href: '#/calls/' + r.session_id, 'data-testid': 'initiate-open' }, 'Open the call');
      result.dataset.status = r.status;
      if (r.status === 'simulation') {
        show('sim', h('strong', null, 'Simulation mode: no real call was placed.'), ' ', r.message ? r.message + '. ' : '', open);
      } else {
        show('ok', h('strong', null, 'Calling ' + body.phone + '…'), ' ', r.message ? r.message + ' ' : `Twilio has the call (${r.status}). `, open);
      }
      onPlaced && onPlaced(r);
    } catch (e) {
      const f = e.field && fields[e.field];
      if (f) {
        f.error.textContent = e.message;
        f.input.setAttribute('aria-invalid', 'true');
        f.input.focus();
      } else {
        show('bad', e.message);
      }
      if (e.status && e.status < 500) key = null; // refused: a corrected form is a new attempt
    } finally {
      submit.disabled = false;
      submit.textContent = 'Call';
    }
  }

  return h('form', { class: 'card call-form', 'data-testid': 'call-form', onsubmit: send, novalidate: true, 'aria-labelledby': 'form-title' },
    h('div', { class: 'card-head' }, h('h2', { id: 'form-title' }, 'Call a customer')),
    phone.row, customer.row, agent.row,
    h('datalist', { id: 'agent-types' }, AGENT_TYPES.map((t) => h('option', { value: t }))),
    h('div', { class: 'actions' }, submit),
    result);
}
