// Input lists as docker/build-push-action and docker/metadata-action read them (actions-toolkit's Util.getInputList:
// csv-parse over the whole input with relaxed quotes and any column count): records end at a line break outside
// quotes, fields at a comma; a field that starts with `"` is quoted until a `"` followed by a comma, a line break or the
// end (`""` inside is one quote), and may span lines; a quote anywhere else is an ordinary character; a quote never
// closed is an error. With `comment` set, a record starting with it is skipped (metadata-action's lists: `# …` lines).
// A record of one field is one item (split at its commas again for a "List/CSV" input); a record of several fields is
// several items (List/CSV) or one, joined by commas (List). Items are trimmed unless asked not to; empty ones dropped.
// Pure: no @actions/* here, so that it is testable on its own.
import { splitCSV } from '../dockerfile/plan.js';

/** The fields of one CSV line, quotes removed (a quote opens a field only at its start, as in Dockerfile flags). */
export const csvFields = splitCSV;

export class ListError extends Error {
  override readonly name = 'ListError';
}

export interface ListOptions {
  /** a "List" input (one item per record) when true; "List/CSV" (commas split items too) when false */
  ignoreComma: boolean;
  /** a record starting with this is a comment */
  comment?: string;
  /** false: quotes are ordinary characters (build-push-action's `outputs`) */
  quote?: boolean;
  /** false: items keep their white space (build-push-action's `secrets`) */
  trim?: boolean;
}

/** The records of `text` as csv-parse reads them with actions-toolkit's options. */
export function csvRecords(text: string, options: { comment?: string; quote?: boolean } = {}): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoting = false;
  let commenting = false;
  const quotes = options.quote !== false;
  const endRecord = () => {
    if (!commenting && !(record.length === 0 && field === '')) records.push([...record, field]);
    record = [];
    field = '';
    commenting = false;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (commenting) {
      if (c === '\n' || c === '\r') endRecord();
      continue;
    }
    if (quoting) {
      if (c !== '"') {
        field += c;
        continue;
      }
      const next = text[i + 1];
      if (next === '"') {
        field += '"';
        i++;
      } else {
        quoting = false;
        // a closing quote not followed by a comma or a line break: both quotes were ordinary characters
        if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r') field = `"${field}`;
      }
      continue;
    }
    if (c === '"' && quotes && field === '') quoting = true;
    else if (options.comment && c === options.comment && record.length === 0 && field === '') commenting = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRecord();
    } else field += c;
  }
  if (quoting)
    throw new ListError(
      'a quoted value is not closed (a " opens a value only at its start; write "" for a quote inside one)',
    );
  endRecord();
  return records;
}

/** A List (`ignoreComma`) or List/CSV input's items. */
export function getList(text: string, options: ListOptions): string[] {
  const out: string[] = [];
  for (const record of csvRecords(text, options)) {
    if (record.length === 1) out.push(...(options.ignoreComma ? record : record[0].split(',')));
    else if (options.ignoreComma) out.push(record.join(','));
    else out.push(...record);
  }
  return out
    .filter((s) => s !== '')
    .map((s) => (options.trim === false ? s : s.trim()))
    .filter((s) => s !== '');
}

/** A boolean input as @actions/core's getBooleanInput reads it (YAML 1.2 core schema), or the default when empty. */
export function inputBool(name: string, text: string, fallback: boolean): boolean {
  const t = text.trim();
  if (t === '') return fallback;
  if (['true', 'True', 'TRUE'].includes(t)) return true;
  if (['false', 'False', 'FALSE'].includes(t)) return false;
  throw new TypeError(`input ${name}: ${JSON.stringify(t)} is not a boolean (true or false)`);
}
