// mpps.js: an independent MPPS SCU (dcmjs-dimse) for t/2010-mwlscp-mpps.t.
//
//   node -r ./t/peers/nodelay.js t/peers/mpps.js PORT create UID ACCESSION STUDY_UID
//   node -r ./t/peers/nodelay.js t/peers/mpps.js PORT set UID COMPLETED|DISCONTINUED
//
// Prints "status=0xNNNN" and, when there is one, "comment=..." and exits 0
// whenever a response came back (whatever its status), 1 otherwise.
'use strict';
const dcmjsDimse = require('dcmjs-dimse');
const { Client, Dataset } = dcmjsDimse;
dcmjsDimse.log.setLevel('error');
const { NCreateRequest, NSetRequest } = dcmjsDimse.requests;

const MPPS = '1.2.840.10008.3.1.2.3.3';
const [port, op, uid, a1, a2] = process.argv.slice(2);
const now = new Date();
const date = now.toISOString().slice(0, 10).replace(/-/g, '');
const time = now.toISOString().slice(11, 19).replace(/:/g, '');

let request;
if (op === 'create') {
  request = new NCreateRequest(MPPS, uid);
  request.setDataset(new Dataset({
    SpecificCharacterSet: 'ISO_IR 192',
    PerformedProcedureStepStatus: 'IN PROGRESS',
    PerformedProcedureStepID: 'PPS1',
    PerformedProcedureStepStartDate: date,
    PerformedProcedureStepStartTime: time,
    PerformedProcedureStepEndDate: '',
    PerformedProcedureStepEndTime: '',
    Modality: 'MG',
    PerformedStationAETitle: 'MPPSJS',
    ScheduledStepAttributesSequence: [{
      AccessionNumber: a1,
      StudyInstanceUID: a2,
      RequestedProcedureID: '',
      ScheduledProcedureStepID: '',
    }],
  }));
} else if (op === 'set') {
  request = new NSetRequest(MPPS, uid);
  request.setDataset(new Dataset({
    SpecificCharacterSet: 'ISO_IR 192',
    PerformedProcedureStepStatus: a1,
    PerformedProcedureStepEndDate: date,
    PerformedProcedureStepEndTime: time,
  }));
} else {
  console.error('usage: mpps.js PORT create UID ACC STUDY_UID | set UID STATUS');
  process.exit(64);
}

let answered = false;
request.on('response', (response) => {
  answered = true;
  const st = response.getStatus();
  console.log('status=0x' + st.toString(16).padStart(4, '0').toUpperCase());
  const comment = response.getErrorComment && response.getErrorComment();
  if (comment) console.log('comment=' + comment);
});
const client = new Client();
client.addRequest(request);
client.on('networkError', (e) => {
  console.error('network error: ' + e);
});
client.on('closed', () => {
  process.exit(answered ? 0 : 1);
});
client.send('127.0.0.1', Number(port), 'MPPSJS', 'SCREENING_MWL');
