/**
 * Tar headers, written by hand so a bundle can be built synchronously, chunk by chunk,
 * into a reused buffer (tar-stream's pack is a stream that holds every chunk until it is
 * read). The output is what tar-stream's pack writes and any tar reads: ustar headers
 * (long names split into prefix and name), a pax header before an entry whose name or
 * link target does not fit or is not ASCII, and base-256 sizes from 8 GiB on.
 */

export const BLOCK = 512;

export interface TarHeader {
  /** '/'-separated path; directories get their trailing '/' here. */
  name: string;
  type: "file" | "directory" | "symlink";
  size: number;
  mode: number;
  mtime: Date;
  linkname?: string;
}

/** The header block(s) of one entry: a pax header first when ustar cannot hold it. */
export function encodeTarHeader(header: TarHeader): Buffer {
  const name =
    header.type === "directory" && !header.name.endsWith("/") ? `${header.name}/` : header.name;
  const linkname = header.linkname ?? "";
  const split = splitName(name);
  if (split && isAscii(linkname) && linkname.length <= 100) {
    return ustar({ ...header, linkname }, split.name, split.prefix);
  }
  const pax = paxRecords({ path: name, ...(linkname ? { linkpath: linkname } : {}) });
  const paxHeader = ustar(
    {
      name: "PaxHeader",
      type: "pax",
      size: pax.length,
      mode: header.mode,
      mtime: header.mtime,
      linkname: "",
    },
    "PaxHeader",
    "",
  );
  // The ustar header after it carries what fits; readers take name and link from the pax records.
  const fallback = ustar(
    { ...header, linkname: isAscii(linkname) ? linkname.slice(0, 100) : "" },
    asciiTail(name, 100),
    "",
  );
  return Buffer.concat([paxHeader, pax, Buffer.alloc(padding(pax.length)), fallback]);
}

/** Zero bytes that follow `size` bytes of entry data up to the next block. */
export function padding(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

/** The end of an archive: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

function isAscii(text: string): boolean {
  return /^[\x20-\x7e]*$/.test(text);
}

function asciiTail(text: string, max: number): string {
  const ascii = text.replace(/[^\x20-\x7e]/g, "_");
  return ascii.length <= max ? ascii : ascii.slice(ascii.length - max);
}

/** ustar's split of a long name at a '/' into a prefix (155) and a name (100), if it fits. */
function splitName(name: string): { name: string; prefix: string } | undefined {
  if (!isAscii(name)) return undefined;
  if (name.length <= 100) return { name, prefix: "" };
  // The name part may end with '/' (a directory): split at a '/' before that.
  for (
    let at = name.lastIndexOf("/", name.length - 2);
    at > 0;
    at = name.lastIndexOf("/", at - 1)
  ) {
    const prefix = name.slice(0, at);
    const rest = name.slice(at + 1);
    if (rest.length > 100) return undefined;
    if (prefix.length <= 155) return { name: rest, prefix };
  }
  return undefined;
}

function paxRecords(records: Record<string, string>): Buffer {
  let text = "";
  for (const [key, value] of Object.entries(records)) {
    const body = ` ${key}=${value}\n`;
    const bodyBytes = Buffer.byteLength(body);
    // The length counts its own digits.
    let length = bodyBytes + String(bodyBytes).length;
    if (String(length).length !== String(bodyBytes).length)
      length = bodyBytes + String(length).length;
    text += `${length}${body}`;
  }
  return Buffer.from(text);
}

const TYPEFLAG = { file: "0", symlink: "2", directory: "5", pax: "x" } as const;

function ustar(
  header: Omit<TarHeader, "type" | "name"> & {
    type: keyof typeof TYPEFLAG;
    name: string;
    linkname: string;
  },
  name: string,
  prefix: string,
): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, "latin1");
  writeOctal(block, header.mode & 0o7777, 100, 8);
  writeOctal(block, 0, 108, 8); // uid
  writeOctal(block, 0, 116, 8); // gid
  const size = header.type === "directory" || header.type === "symlink" ? 0 : header.size;
  if (size.toString(8).length > 11) writeBase256(block, size, 124, 12);
  else writeOctal(block, size, 124, 12);
  writeOctal(block, Math.max(0, Math.floor(header.mtime.getTime() / 1000)), 136, 12);
  block.write(TYPEFLAG[header.type], 156, 1, "latin1");
  block.write(header.linkname, 157, 100, "latin1");
  block.write("ustar\u000000", 257, 8, "latin1");
  writeOctal(block, 0, 329, 8); // devmajor
  writeOctal(block, 0, 337, 8); // devminor
  block.write(prefix, 345, 155, "latin1");
  // The checksum is taken with its own field as spaces.
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148, 8, "latin1");
  return block;
}

/** `width - 1` octal digits and a terminating NUL, as tar writes numbers. */
function writeOctal(block: Buffer, value: number, offset: number, width: number): void {
  block.write(`${value.toString(8).padStart(width - 1, "0")}\u0000`, offset, width, "latin1");
}

/** GNU base-256: 0x80, then the value big-endian (sizes of 8 GiB and more). */
function writeBase256(block: Buffer, value: number, offset: number, width: number): void {
  block[offset] = 0x80;
  let rest = value;
  for (let i = width - 1; i > 0; i--) {
    block[offset + i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
}
