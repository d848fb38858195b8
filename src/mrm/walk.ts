// The MRGL walk as a lazy sequence: groups in MRGL order, then the default
// group; inside a group, the devices of the wanted type in the order the
// group's policy gives. Devices that can be ruled out without asking anyone
// (type, capability, registration) become trace steps; the rest become
// candidates that the MRM sends an allocation request to. Lazy, so the walk
// stops at the first device that says yes.
import {
  DEFAULT_GROUP,
  type ClusterModel,
  type GroupSpec,
  type PhoneSpec,
  type ResourceSpec,
} from '../config/model.ts';
import type { MediaResourceType } from '../config/schema.ts';
import type { DeviceManager } from '../cluster/deviceManager.ts';
import type { RegistryEntry, Requirement } from '../cluster/messages.ts';
import { DEVICE_KINDS } from '../devices/kinds.ts';
import { deviceLacks } from '../devices/kind.ts';
import type { LoadView } from './loadView.ts';
import type { TraceStep } from './trace.ts';

export interface WalkContext {
  model: ClusterModel;
  devices: DeviceManager;
  loads: LoadView;
  phone: PhoneSpec;
  type: MediaResourceType;
  mrgl: string | undefined;
  requirement: Requirement;
  /** list every wrong-type device (explain) instead of one line per group */
  verbose: boolean;
  /** a device to try before the MRGL (e.g. the bridge a conference already runs on), shown as its own group */
  preferred?: { device: string; group: string } | undefined;
}

export type WalkItem =
  | { step: TraceStep }
  | { candidate: { group: string; device: ResourceSpec; entry: RegistryEntry } };

export function* walk(ctx: WalkContext): Generator<WalkItem> {
  const groups: GroupSpec[] = [];
  for (const name of ctx.mrgl ? (ctx.model.mrgls.get(ctx.mrgl) ?? []) : []) {
    const g = ctx.model.groups.get(name);
    if (g) groups.push(g);
  }
  groups.push(ctx.model.defaultGroup);
  const kind = DEVICE_KINDS[ctx.type];
  const tried = new Set<string>();
  if (ctx.preferred && ctx.model.resources.get(ctx.preferred.device)?.type === ctx.type) {
    // Same checks as any device of the walk, then the MRGL as usual (this device is not tried twice).
    groups.unshift({
      name: ctx.preferred.group,
      location: undefined,
      userClass: undefined,
      policy: 'ordered',
      devices: [ctx.preferred.device],
      byType: new Map([[ctx.type, [ctx.preferred.device]]]),
    });
  }

  for (const group of groups) {
    if (group.userClass && group.userClass !== ctx.phone.userClass) {
      yield {
        step: {
          group: group.name,
          device: null,
          verdict: 'user_class_mismatch',
          detail: `group is for user class "${group.userClass}", phone is "${ctx.phone.userClass}"`,
        },
      };
      continue;
    }
    const matching = group.byType.get(ctx.type) ?? [];
    const others = group.devices.length - matching.length;
    if (others > 0 && (ctx.verbose || group.name !== DEFAULT_GROUP)) {
      if (ctx.verbose) {
        for (const d of group.devices) {
          const r = ctx.model.resources.get(d);
          if (r && r.type !== ctx.type)
            yield { step: { group: group.name, device: d, verdict: 'wrong_type', detail: r.type } };
        }
      } else {
        yield {
          step: {
            group: group.name,
            device: null,
            verdict: 'wrong_type',
            detail: `${others} device(s) of other types skipped`,
          },
        };
      }
    }
    for (const name of order(group, matching, ctx.loads)) {
      if (tried.has(name)) continue;
      tried.add(name);
      const device = ctx.model.resources.get(name);
      if (!device) continue;
      const lack = deviceLacks(kind, device, ctx.requirement);
      if (lack) {
        yield { step: { group: group.name, device: name, verdict: 'no_capability', detail: lack, node: device.node } };
        continue;
      }
      const found = ctx.devices.lookup(name);
      if (!found.registered) {
        yield {
          step: { group: group.name, device: name, verdict: 'not_registered', detail: found.reason, node: device.node },
        };
        continue;
      }
      yield { candidate: { group: group.name, device, entry: found.entry } };
    }
  }
}

function order(group: GroupSpec, matching: readonly string[], loads: LoadView): readonly string[] {
  if (group.policy === 'ordered' || matching.length < 2) return matching;
  // least_used: lowest active/capacity first; Array.prototype.sort is stable, so listed order breaks ties.
  return [...matching].sort((a, b) => loads.ratio(a) - loads.ratio(b));
}
