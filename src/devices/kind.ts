import type { ResourceSpec } from '../config/model.ts';
import type { MediaResourceType } from '../config/schema.ts';
import type { Requirement } from '../cluster/messages.ts';
import type { SessionKind } from '../media/sessionKind.ts';

/**
 * What is particular to one type of media resource device: the one place a
 * kind is described (its capacity, what it can serve, how it opens its media
 * sessions, how people call it). A new kind is a file of its own and a line
 * in kinds.ts (and its type in config/schema.ts's MEDIA_RESOURCE_TYPES).
 */
export interface DeviceKind extends SessionKind {
  type: MediaResourceType;
  /** its name for people (console, logs) */
  label: string;
  /** what one unit of capacity is, for humans */
  unit: string;
  /** units one core carries in real time (bench:media, BENCHMARKS.md): what `capacity: auto` gives per media thread */
  perCore: number;
  /** undefined when the device can serve the requirement, else why not */
  lacks(spec: ResourceSpec, req: Requirement): string | undefined;
}

export function missing<T>(have: readonly T[], want: readonly T[] | undefined): T[] {
  return (want ?? []).filter((w) => !have.includes(w));
}

/** Why a device cannot serve a requirement: what every kind shares (SRTP), then its own checks. */
export function deviceLacks(kind: DeviceKind, spec: ResourceSpec, req: Requirement): string | undefined {
  if (req.srtp && !spec.srtp) return 'does not do SRTP (srtp: false) and the call needs encrypted media';
  return kind.lacks(spec, req);
}

/** A device's capacity: as configured, or (auto) its kind's per-core figure times the media threads of its node. */
export function capacityOf(kind: DeviceKind, spec: ResourceSpec, mediaThreads: number): number {
  return spec.capacity === 'auto' ? kind.perCore * Math.max(1, mediaThreads) : spec.capacity;
}
