// findbench.js: time Modality Worklist C-FIND queries with dcmjs-dimse,
// for bench/mwl.  Run with the setNoDelay preload:
//
//   node -r ./t/peers/nodelay.js bench/peers/findbench.js PORT MODE N WARMUP QUERY_JSON
//
// MODE  one    one association carrying WARMUP+N C-FIND requests in
//              sequence; each timed from the moment its request is written
//              to the socket to its final (non-pending) response.
//       assoc  WARMUP+N associations one after the other, one C-FIND each;
//              each timed from connect() to the A-RELEASE-RP.
//       echo   as assoc, with a C-ECHO instead of the C-FIND (the fixed
//              cost of an association, client included).
// QUERY_JSON  the query identifier as a dcmjs naturalized dataset.
//
// Prints one JSON object on stdout: {"ms":[...N latencies...],
// "find_ms":[...] (assoc: the C-FIND part alone), "matches":[...distinct
// match counts seen...]}.  The WARMUP first queries are left out.
// Exits 1 on any failure status, network error or missing response.
'use strict';
const dcmjsDimse = require('dcmjs-dimse');
const { Client, Dataset } = dcmjsDimse;
const { CFindRequest, CEchoRequest } = dcmjsDimse.requests;
const { SopClass, Status } = dcmjsDimse.constants;
dcmjsDimse.log.setLevel('error');

const [port, mode, nArg, wArg, queryJson] = process.argv.slice(2);
const N = Number(nArg);
const WARMUP = Number(wArg);
const query = JSON.parse(queryJson || '{}');
const now = () => Number(process.hrtime.bigint()) / 1e6;

function die(msg) {
  console.error('findbench: ' + msg);
  process.exit(1);
}

// A C-FIND request whose start and end times and match count are recorded
// on the object itself.
function findRequest() {
  const rq = new CFindRequest();
  rq.setAffectedSopClassUid(SopClass.ModalityWorklistInformationModelFind);
  rq.setDataset(new Dataset(JSON.parse(JSON.stringify(query))));
  rq.matches = 0;
  // Network calls setMessageId() just before it writes the request.
  const setId = rq.setMessageId.bind(rq);
  rq.setMessageId = (id) => {
    rq.t0 = now();
    setId(id);
  };
  rq.on('response', (resp) => {
    const st = resp.getStatus();
    if (st === Status.Pending || st === 0xff01) {
      rq.matches++;
    } else {
      rq.t1 = now();
      if (st !== Status.Success) die('C-FIND status 0x' + st.toString(16));
    }
  });
  return rq;
}

const opts = { connectTimeout: 10000, associationTimeout: 10000, pduTimeout: 10000 };
const matchesSeen = new Set();

function one() {
  const client = new Client();
  const rqs = [];
  for (let i = 0; i < WARMUP + N; i++) {
    rqs.push(findRequest());
    client.addRequest(rqs[i]);
  }
  client.on('networkError', (e) => die('network error: ' + e));
  client.on('associationRejected', () => die('association rejected'));
  client.on('closed', () => {
    const ms = [];
    for (let i = 0; i < rqs.length; i++) {
      const rq = rqs[i];
      if (rq.t0 === undefined || rq.t1 === undefined) die('request ' + i + ' got no final response');
      if (i < WARMUP) continue;
      ms.push(rq.t1 - rq.t0);
      matchesSeen.add(rq.matches);
    }
    console.log(JSON.stringify({ ms, find_ms: ms, matches: [...matchesSeen] }));
  });
  client.send('127.0.0.1', Number(port), 'FINDBENCH', 'SCREENING_MWL', opts);
}

// One association with one request; resolves {total, find, matches}.
function assocOnce(echo) {
  return new Promise((resolve) => {
    const client = new Client();
    let rq;
    let done = false;
    if (echo) {
      rq = new CEchoRequest();
      const setId = rq.setMessageId.bind(rq);
      rq.setMessageId = (id) => {
        rq.t0 = now();
        setId(id);
      };
      rq.on('response', (resp) => {
        rq.t1 = now();
        if (resp.getStatus() !== Status.Success) die('C-ECHO failed');
      });
      rq.matches = 0;
    } else {
      rq = findRequest();
    }
    client.addRequest(rq);
    let t0, tRel;
    client.on('networkError', (e) => die('network error: ' + e));
    client.on('associationRejected', () => die('association rejected'));
    client.on('associationReleased', () => {
      tRel = now();
    });
    client.on('closed', () => {
      if (done) return;
      done = true;
      if (rq.t1 === undefined) die('no final response');
      if (tRel === undefined) die('no A-RELEASE-RP');
      resolve({ total: tRel - t0, find: rq.t1 - rq.t0, matches: rq.matches });
    });
    t0 = now();
    client.send('127.0.0.1', Number(port), 'FINDBENCH', 'SCREENING_MWL', opts);
  });
}

async function assoc(echo) {
  const ms = [];
  const findMs = [];
  for (let i = 0; i < WARMUP + N; i++) {
    const r = await assocOnce(echo);
    if (i < WARMUP) continue;
    ms.push(r.total);
    findMs.push(r.find);
    matchesSeen.add(r.matches);
  }
  console.log(JSON.stringify({ ms, find_ms: findMs, matches: [...matchesSeen] }));
}

if (!(N > 0) || !(WARMUP >= 0)) die('usage: findbench.js PORT one|assoc|echo N WARMUP QUERY_JSON');
if (mode === 'one') one();
else if (mode === 'assoc') assoc(false);
else if (mode === 'echo') assoc(true);
else die('unknown mode ' + mode);
