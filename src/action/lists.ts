// Input lists as docker/build-push-action reads them (actions-toolkit's Util.getInputList): each line is a CSV
// record (double quotes at the start of a field group, a quote elsewhere is an ordinary character, `""` inside
// quotes is one quote); empty lines are skipped. A "List" input keeps a line's fields together, joined by commas again; a
// "List/CSV" input splits them (and a line of one field at its commas). Items are trimmed; empty ones dropped.
// Pure: no @actions/* here, so that it is testable on its own.
import { splitCSV } from '../dockerfile/plan.js';

/** The fields of one CSV line, quotes removed (a quote opens a field only at its start, as in Dockerfile flags). */
export const csvFields = splitCSV;

/** A List (`comma: false`: one item per line) or List/CSV (`comma: true`) input's items. */
export function inputList(text: string, options: { comma: boolean; comment?: string }): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    if (raw.trim() === '') continue;
    if (options.comment && raw.trimStart().startsWith(options.comment)) continue;
    const fields = csvFields(raw);
    if (fields.length === 1) out.push(...(options.comma ? fields[0].split(',') : fields));
    else if (options.comma) out.push(...fields);
    else out.push(fields.join(','));
  }
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

/** A boolean input as @actions/core's getBooleanInput reads it (YAML 1.2 core schema), or the default when empty. */
export function inputBool(name: string, text: string, fallback: boolean): boolean {
  const t = text.trim();
  if (t === '') return fallback;
  if (['true', 'True', 'TRUE'].includes(t)) return true;
  if (['false', 'False', 'FALSE'].includes(t)) return false;
  throw new TypeError(`input ${name}: ${JSON.stringify(t)} is not a boolean (true or false)`);
}
