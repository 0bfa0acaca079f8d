import type {
  HumanName,
  Identifier,
  Organization,
  Practitioner,
  PractitionerRole,
  Reference,
  Resource,
} from '@medplum/fhirtypes';

/**
 * Who referred: the same person counts once however the referral names them. The key is, in order:
 * 1. the NPI (identifier system http://hl7.org/fhir/sid/us-npi) of the Practitioner — the
 *    requester itself, or the PractitionerRole's practitioner — or, only when the reference
 *    resolves to nothing on this server, an NPI on the Reference;
 * 2. for an Organization requester, its identifier (its NPI first);
 * 3. the normalised name: diacritics, case, punctuation, titles and degrees (Dr., MD, DPT…),
 *    middle initials and word order do not matter ("Dr. Amy Chen" = "Chen, Amy B. MD");
 * 4. the literal reference, when nothing else is known.
 * The organisation (a role's organisation, or the Organization requester) is kept beside it, for
 * reports by referring organisation. Pure: the resources are looked up in `directory`.
 */
export const NPI_SYSTEM = 'http://hl7.org/fhir/sid/us-npi';
/** Codes a referrer known only by name: the normalised name. */
export const REFERRER_NAME_SYSTEM = 'https://ptreferral.dev/fhir/sid/referrer-normalised-name';
export const REFERENCE_SYSTEM = 'https://ptreferral.dev/fhir/sid/referrer-reference';

export interface SourceIdentity {
  /** `system|code`, stable across references and display names. */
  key: string;
  system: string;
  code: string;
  display: string;
}

export interface ReferrerIdentity extends SourceIdentity {
  organization?: SourceIdentity;
}

/** Practitioners, PractitionerRoles and Organizations by `Type/id`. */
export type ReferrerDirectory = ReadonlyMap<string, Resource>;

export function directoryOf(resources: Iterable<Resource>): Map<string, Resource> {
  const map = new Map<string, Resource>();
  for (const r of resources) map.set(`${r.resourceType}/${r.id}`, r);
  return map;
}

export function resolveReferrer(
  reference: Reference | undefined,
  directory: ReferrerDirectory,
  contained: Resource[] = [],
): ReferrerIdentity {
  const target = lookup(reference, directory, contained);
  // An NPI written on the Reference is the writer's claim, not what the server knows: it names the
  // source only when the reference resolves to nothing here (a referrer could otherwise claim
  // another's NPI on its own referrals and be counted as them).
  const fromReference = target
    ? undefined
    : npiOf(reference?.identifier ? [reference.identifier] : undefined);
  switch (target?.resourceType) {
    case 'Practitioner': {
      const p = target as Practitioner;
      return practitionerIdentity(p, reference, fromReference);
    }
    case 'PractitionerRole': {
      const role = target as PractitionerRole;
      const practitioner = lookup(role.practitioner, directory, contained) as Practitioner | undefined;
      const organization = lookup(role.organization, directory, contained) as Organization | undefined;
      const person = practitioner
        ? practitionerIdentity(practitioner, role.practitioner, npiOf(role.identifier) ?? fromReference)
        : byNpiOrName(
            npiOf(role.identifier) ?? fromReference,
            role.practitioner?.display ?? reference?.display,
            reference,
          );
      const org = organization
        ? organizationIdentity(organization, role.organization)
        : role.organization?.display
          ? nameIdentity(role.organization.display, role.organization)
          : undefined;
      return { ...person, ...(org ? { organization: org } : {}) };
    }
    case 'Organization': {
      const org = organizationIdentity(target as Organization, reference);
      return { ...org, organization: org };
    }
    default:
      return byNpiOrName(fromReference, reference?.display, reference);
  }
}

function practitionerIdentity(
  p: Practitioner,
  reference: Reference | undefined,
  fallbackNpi: string | undefined,
): ReferrerIdentity {
  const display = formatName(p.name) ?? reference?.display;
  return byNpiOrName(npiOf(p.identifier) ?? fallbackNpi, display, reference);
}

function organizationIdentity(org: Organization, reference: Reference | undefined): SourceIdentity {
  const display = org.name ?? reference?.display ?? referenceText(reference);
  const identifier =
    org.identifier?.find((i) => i.system === NPI_SYSTEM && i.value) ??
    org.identifier?.find((i) => i.system && i.value);
  if (identifier) {
    return identity(identifier.system as string, identifier.value as string, display);
  }
  return nameIdentity(display, reference);
}

function byNpiOrName(
  npi: string | undefined,
  display: string | undefined,
  reference: Reference | undefined,
): ReferrerIdentity {
  if (npi) return identity(NPI_SYSTEM, npi, display ?? `NPI ${npi}`);
  return nameIdentity(display, reference);
}

function nameIdentity(display: string | undefined, reference: Reference | undefined): SourceIdentity {
  const name = display ? normaliseName(display) : '';
  if (name) return identity(REFERRER_NAME_SYSTEM, name, display as string);
  const text = referenceText(reference);
  return identity(REFERENCE_SYSTEM, text, text);
}

function identity(system: string, code: string, display: string): SourceIdentity {
  return { key: `${system}|${code}`, system, code, display };
}

function referenceText(reference: Reference | undefined): string {
  return reference?.reference ?? 'unknown';
}

function lookup(
  reference: Reference | undefined,
  directory: ReferrerDirectory,
  contained: Resource[],
): Resource | undefined {
  const ref = reference?.reference?.replace(/\/_history\/[^/]+$/, '');
  if (!ref) return undefined;
  if (ref.startsWith('#')) return contained.find((c) => `#${c.id}` === ref);
  const m = /([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})$/.exec(ref);
  return m ? directory.get(m[1] as string) : undefined;
}

function npiOf(identifiers: Identifier[] | undefined): string | undefined {
  const value = identifiers?.find((i) => i.system === NPI_SYSTEM && i.value)?.value;
  return value?.replace(/\s+/g, '') || undefined;
}

/** 'Dr. Mary K. Jones' from a HumanName: its text, or prefix, given names and family. */
export function formatName(names: HumanName[] | undefined): string | undefined {
  const name = names?.find((n) => n.use === 'official') ?? names?.[0];
  if (!name) return undefined;
  if (name.text) return name.text;
  const parts = [...(name.prefix ?? []), ...(name.given ?? []), name.family, ...(name.suffix ?? [])].filter(
    (p): p is string => !!p,
  );
  return parts.length ? parts.join(' ') : undefined;
}

/** Titles, honorifics and degrees that do not tell two people apart. */
const NOT_A_NAME = new Set([
  'dr',
  'doctor',
  'prof',
  'professor',
  'mr',
  'mrs',
  'ms',
  'miss',
  'md',
  'do',
  'dpt',
  'pt',
  'np',
  'pa',
  'pac',
  'rn',
  'aprn',
  'fnp',
  'mbbs',
  'mbchb',
  'phd',
  'facs',
  'facp',
  'faafp',
  'jr',
  'sr',
  'ii',
  'iii',
]);

/** 'Chen, Amy B. MD' → 'amy chen'; 'Dr. Amy Chen' → 'amy chen'. */
export function normaliseName(text: string): string {
  const words = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z\s'-]+/g, ' ')
    .replace(/['-]/g, '')
    .split(/\s+/)
    .filter((w) => w.length > 1 && !NOT_A_NAME.has(w));
  return [...new Set(words)].sort().join(' ');
}
