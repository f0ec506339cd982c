// accept.js: how the dcmjs-dimse test SCPs answer an A-ASSOCIATE-RQ:
// contexts for the given abstract syntaxes are accepted in Explicit, else
// Implicit VR Little Endian; the rest are rejected.
'use strict';
const { PresentationContextResult, TransferSyntax } =
  require('dcmjs-dimse').constants;

function acceptContexts(association, abstractSyntaxes) {
  association.getPresentationContexts().forEach((c) => {
    const ctx = association.getPresentationContext(c.id);
    if (!abstractSyntaxes.includes(ctx.getAbstractSyntaxUid())) {
      ctx.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
      return;
    }
    const ts = ctx.getTransferSyntaxUids();
    const pick = ts.find((t) => t === TransferSyntax.ExplicitVRLittleEndian) ||
      ts.find((t) => t === TransferSyntax.ImplicitVRLittleEndian);
    if (pick) ctx.setResult(PresentationContextResult.Accept, pick);
    else ctx.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
  });
}

module.exports = { acceptContexts };
