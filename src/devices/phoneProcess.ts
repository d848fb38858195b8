// The device process of a phone. In this release it answers status; SIP
// registration state and call legs will be written only through it.
import type { PhoneSpec } from '../config/model.ts';
import { DeviceProcess, ProcessError } from '../cluster/deviceProcess.ts';
import { StatusRequest, type DeviceStatus } from '../cluster/messages.ts';
import type { Pid } from '../cluster/pid.ts';

type PhoneMessage = { op: 'status' };

export class PhoneProcess extends DeviceProcess<PhoneMessage, DeviceStatus> {
  constructor(pid: Pid, readonly spec: PhoneSpec) {
    super(pid, spec.number);
  }

  accept(body: unknown): PhoneMessage {
    const r = StatusRequest.safeParse(body);
    if (!r.success) throw new ProcessError('bad_request', 'a phone process answers only {"op":"status"}');
    return r.data;
  }

  protected handle(): DeviceStatus {
    return {
      name: this.name,
      kind: 'phone',
      pid: this.pid,
      capacity: 0,
      active: 0,
      available: 0,
      out_of_resources: 0,
      allocations: [],
    };
  }
}
