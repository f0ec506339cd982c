// commit.js: an independent Storage Commitment SCU (dcmjs-dimse) for
// t/62xx-qrscp-commit*.t.
//
//   node -r ./t/peers/nodelay.js t/peers/commit.js request PORT CALLED CALLING \
//        TXUID MODE [OPTION...] [CLASS:INSTANCE...]
//     Sends one N-ACTION (Request Storage Commitment).  MODE "wait" keeps
//     the association open until the N-EVENT-REPORT arrives on it (20 s at
//     most), then releases; "release" releases right after the
//     N-ACTION-RSP.  Options make the request wrong on purpose:
//     --action-type N, --instance UID (requested SOP instance), --no-tx,
//     --no-seq, --empty-seq, --item-without-uids.
//
//   node -r ./t/peers/nodelay.js t/peers/commit.js listen PORT
//     The requester's own SCP, for reports on a new association: accepts
//     Storage Commitment (taking the SCU role the report needs) and C-ECHO,
//     answers every N-EVENT-REPORT with success.  Listens until killed.
//
// Both print what came back, one line each:
//   status=0xNNNN / comment=TEXT              (request: the N-ACTION-RSP)
//   report event=N tx=UID committed=C failed=F
//   committed CLASS INSTANCE
//   failed CLASS INSTANCE 0xREASON
//   end
// request exits 0 when the N-ACTION-RSP came back, 1 otherwise.
'use strict';
const dcmjsDimse = require('dcmjs-dimse');
const { Client, Dataset, Server, Scp } = dcmjsDimse;
const { NActionRequest } = dcmjsDimse.requests;
const { CEchoResponse, NEventReportResponse } = dcmjsDimse.responses;
const { Status } = dcmjsDimse.constants;
const { acceptContexts } = require('./accept');
dcmjsDimse.log.setLevel('error');

const COMMITMENT = '1.2.840.10008.1.20.1';
const COMMITMENT_INSTANCE = '1.2.840.10008.1.20.1.1';
const ECHO = '1.2.840.10008.1.1';

function out(line) {
  process.stdout.write(line + '\n');
}

function hex(n) {
  return '0x' + Number(n).toString(16).padStart(4, '0').toUpperCase();
}

// Print a report and return the response to send back.
function printReport(request) {
  const ds = request.getDataset();
  const ok = (ds && ds.getElement('ReferencedSOPSequence')) || [];
  const bad = (ds && ds.getElement('FailedSOPSequence')) || [];
  out(`report event=${request.getEventTypeId()} ` +
    `tx=${ds && ds.getElement('TransactionUID')} ` +
    `committed=${ok.length} failed=${bad.length}`);
  ok.forEach((i) => out(`committed ${i.ReferencedSOPClassUID} ${i.ReferencedSOPInstanceUID}`));
  bad.forEach((i) => out(`failed ${i.ReferencedSOPClassUID} ${i.ReferencedSOPInstanceUID} ${hex(i.FailureReason)}`));
  out('end');
  const response = NEventReportResponse.fromRequest(request);
  response.setStatus(Status.Success);
  return response;
}

function request(args) {
  const [port, called, calling, tx, mode, ...rest] = args;
  let actionType = 1;
  let instance = COMMITMENT_INSTANCE;
  let seq = 'items';
  let withTx = true;
  const items = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === '--action-type') actionType = Number(rest[++i]);
    else if (a === '--instance') instance = rest[++i];
    else if (a === '--no-tx') withTx = false;
    else if (a === '--no-seq') seq = 'none';
    else if (a === '--empty-seq') seq = 'empty';
    else if (a === '--item-without-uids') seq = 'bare';
    else {
      const [c, u] = a.split(':');
      items.push({ ReferencedSOPClassUID: c, ReferencedSOPInstanceUID: u });
    }
  }
  const elements = {};
  if (withTx) elements.TransactionUID = tx;
  if (seq === 'items') elements.ReferencedSOPSequence = items;
  else if (seq === 'empty') elements.ReferencedSOPSequence = [];
  else if (seq === 'bare') elements.ReferencedSOPSequence = [items[0] || {}, { ReferencedSOPClassUID: '1.2.840.10008.5.1.4.1.1.7' }];
  const rq = new NActionRequest(COMMITMENT, instance, actionType);
  rq.setDataset(new Dataset(elements));

  let answered = false;
  let reported = false;
  const client = new Client();
  rq.on('response', (response) => {
    answered = true;
    out('status=' + hex(response.getStatus()));
    const comment = response.getErrorComment && response.getErrorComment();
    if (comment) out('comment=' + comment);
  });
  client.addRequest(rq);
  client.on('nEventReportRequest', (request, callback) => {
    reported = true;
    callback(printReport(request));
    setImmediate(() => client.network && client.network.sendAssociationReleaseRequest());
  });
  client.on('networkError', (e) => console.error('network error: ' + e));
  client.on('closed', () => process.exit(answered ? 0 : 1));
  if (mode === 'wait') {
    setTimeout(() => {
      if (!reported) console.error('no report on the association');
      process.exit(answered ? 0 : 1);
    }, 20000);
  }
  client.send('127.0.0.1', Number(port), calling, called,
    { associationLingerTimeout: mode === 'wait' ? 25000 : 0 });
}

class ReportScp extends Scp {
  associationRequested(association) {
    acceptContexts(association, [COMMITMENT, ECHO]);
    this.sendAssociationAccept();
  }

  cEchoRequest(request, callback) {
    const response = CEchoResponse.fromRequest(request);
    response.setStatus(Status.Success);
    callback(response);
  }

  nEventReportRequest(request, callback) {
    callback(printReport(request));
  }

  associationReleaseRequested() {
    this.sendAssociationReleaseResponse();
  }

  abort() {}
}

const [op, ...args] = process.argv.slice(2);
if (op === 'request') {
  request(args);
} else if (op === 'listen') {
  const server = new Server(ReportScp);
  server.on('networkError', (e) => console.error('network error: ' + e));
  server.listen(Number(args[0]));
} else {
  console.error('usage: commit.js request PORT CALLED CALLING TXUID wait|release [...] | listen PORT');
  process.exit(64);
}
