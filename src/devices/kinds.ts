import type { MediaResourceType } from '../config/schema.ts';
import { annunciator } from './annunciator.ts';
import { conferenceBridge } from './conferenceBridge.ts';
import type { DeviceKind } from './kind.ts';
import { moh } from './moh.ts';
import { mtp } from './mtp.ts';
import { transcoder } from './transcoder.ts';

export const DEVICE_KINDS: Readonly<Record<MediaResourceType, DeviceKind>> = {
  conference_bridge: conferenceBridge,
  transcoder,
  mtp,
  moh,
  annunciator,
};
