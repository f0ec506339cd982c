// mpps-scp.js: an independent worklist and MPPS SCP (dcmjs-dimse) for
// t/5010-modality-emu-peers.t.
//
//   node -r ./t/peers/nodelay.js t/peers/mpps-scp.js PORT ACCESSION STUDY_UID DATE
//
// Answers a Modality Worklist C-FIND with one MG item (the accession,
// study UID and SPS date given), accepts MPPS N-CREATE and N-SET, and
// prints one line per request on stdout:
//   c-find
//   n-create uid=... status=IN PROGRESS accession=... study=... sps_id=...
//   n-set uid=... status=COMPLETED images=4
// Listens until killed.
'use strict';
const dcmjsDimse = require('dcmjs-dimse');
const { Dataset, Server, Scp } = dcmjsDimse;
const { CEchoResponse, CFindResponse, NCreateResponse, NSetResponse } =
  dcmjsDimse.responses;
const { Status } = dcmjsDimse.constants;
const { acceptContexts } = require('./accept');
dcmjsDimse.log.setLevel('error');

const MWL = '1.2.840.10008.5.1.4.31';
const MPPS = '1.2.840.10008.3.1.2.3.3';
const ECHO = '1.2.840.10008.1.1';
const [port, accession, studyUid, date] = process.argv.slice(2);
const instances = new Map();

function out(line) {
  process.stdout.write(line + '\n');
}

class PeerScp extends Scp {
  associationRequested(association) {
    this.association = association;
    acceptContexts(association, [MWL, MPPS, ECHO]);
    this.sendAssociationAccept();
  }

  cEchoRequest(request, callback) {
    const response = CEchoResponse.fromRequest(request);
    response.setStatus(Status.Success);
    callback(response);
  }

  cFindRequest(request, callback) {
    out('c-find');
    const item = CFindResponse.fromRequest(request);
    item.setDataset(new Dataset({
      SpecificCharacterSet: 'ISO_IR 192',
      AccessionNumber: accession,
      PatientName: 'Peer^Test',
      PatientID: '9990009999',
      PatientBirthDate: '19700101',
      PatientSex: 'F',
      StudyInstanceUID: studyUid,
      RequestedProcedureID: 'RP-' + accession,
      RequestedProcedureDescription: 'Screening mammography',
      ScheduledProcedureStepSequence: [{
        Modality: 'MG',
        ScheduledStationAETitle: '',
        ScheduledProcedureStepStartDate: date,
        ScheduledProcedureStepStartTime: '090000',
        ScheduledProcedureStepID: 'SPS-' + accession,
        ScheduledProcedureStepDescription: 'Screening mammography',
        ScheduledProcedureStepStatus: 'SCHEDULED',
      }],
    }));
    item.setStatus(Status.Pending);
    const done = CFindResponse.fromRequest(request);
    done.setStatus(Status.Success);
    callback([item, done]);
  }

  nCreateRequest(request, callback) {
    const uid = request.getAffectedSopInstanceUid();
    const ds = request.getDataset();
    const ssa = (ds.getElement('ScheduledStepAttributesSequence') || [])[0] || {};
    const response = NCreateResponse.fromRequest(request);
    const status = ds.getElement('PerformedProcedureStepStatus');
    if (instances.has(uid) || status !== 'IN PROGRESS') {
      response.setStatus(0x0111);
    } else {
      instances.set(uid, status);
      response.setStatus(Status.Success);
    }
    out(`n-create uid=${uid} status=${status} accession=${ssa.AccessionNumber} ` +
      `study=${ssa.StudyInstanceUID} sps_id=${ssa.ScheduledProcedureStepID} ` +
      `rp_id=${ssa.RequestedProcedureID}`);
    callback(response);
  }

  nSetRequest(request, callback) {
    const uid = request.getRequestedSopInstanceUid();
    const ds = request.getDataset();
    const status = ds.getElement('PerformedProcedureStepStatus');
    // the images of every performed series (one per view: modality-emu)
    const images = (ds.getElement('PerformedSeriesSequence') || []).reduce(
      (n, series) => n + (series.ReferencedImageSequence || []).length, 0);
    const response = NSetResponse.fromRequest(request);
    if (instances.get(uid) !== 'IN PROGRESS') {
      response.setStatus(0x0110);
    } else {
      instances.set(uid, status);
      response.setStatus(Status.Success);
    }
    out(`n-set uid=${uid} status=${status} images=${images}`);
    callback(response);
  }

  associationReleaseRequested() {
    this.sendAssociationReleaseResponse();
  }
}

const server = new Server(PeerScp);
server.on('networkError', (e) => {
  console.error('network error: ' + e);
});
server.listen(Number(port));
