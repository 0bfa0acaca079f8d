import type { Reference } from '@medplum/fhirtypes';

/**
 * The content of one update, independent of format: the plain-text summary and the HTML report are
 * both rendered from it, so they state the same facts.
 */
export interface OutcomeLine {
  /** 'Lower Extremity Functional Scale (LEFS; 0-80, higher is better)' */
  label: string;
  /** '47/80 on 30 Mar 2026' */
  latest: string;
  /** '38/80 at the initial evaluation on 9 Mar 2026' */
  baseline?: string;
  /** 'improved by 9 points' */
  change?: string;
  /** 'MCID of 9 reached' */
  mcid?: string;
}

export type Block =
  | { kind: 'paragraph'; text: string }
  | { kind: 'list'; heading: string; items: string[] }
  | { kind: 'outcomes'; heading: string; rows: OutcomeLine[] };

export interface ReportDoc {
  /** 'Initial evaluation: Harold Whitfield (DOB 2 Apr 1961)' */
  title: string;
  /** The referral the update is about. */
  referralLine: string;
  blocks: Block[];
  signOff: string[];
  /** The Observations, Goals and CarePlan the text cites, in the order it cites them. */
  cited: Reference[];
}

export function outcomeText(line: OutcomeLine): string {
  const parts = [line.latest, line.baseline, line.change].filter((p) => p !== undefined);
  return `${line.label}: ${parts.join('; ')}${line.mcid ? ` (${line.mcid})` : ''}`;
}

/** The plain-text summary (Communication.payload.contentString). */
export function renderText(doc: ReportDoc): string {
  const sections = [`${doc.title}\n${doc.referralLine}`];
  for (const block of doc.blocks) {
    switch (block.kind) {
      case 'paragraph':
        sections.push(block.text);
        break;
      case 'list':
        sections.push(`${block.heading}:\n${block.items.map((i) => `- ${i}`).join('\n')}`);
        break;
      case 'outcomes':
        sections.push(`${block.heading}:\n${block.rows.map((r) => `- ${outcomeText(r)}`).join('\n')}`);
        break;
    }
  }
  sections.push(doc.signOff.join('\n'));
  return sections.join('\n\n');
}
