/** `pages`: follow next_page_token from one answer to the next. */
import type { CallOptions } from "@connectrpc/connect";

/**
 * Every page of a paged call, first to last: `call(request)`, then again with each answer's
 * nextPageToken until it is empty. Each page is its own call with its own deadline.
 *
 *   for await (const page of pages(pd.definitions.listAssets, { namespace })) { ... }
 */
export async function* pages<Request extends { pageToken?: string }, Response extends { nextPageToken: string }>(
  call: (request: Request, options?: CallOptions) => Promise<Response>,
  request: Request,
  options?: CallOptions,
): AsyncGenerator<Response> {
  let pageToken = request.pageToken ?? "";
  for (;;) {
    const page = await call({ ...request, pageToken }, options);
    yield page;
    if (!page.nextPageToken) {
      return;
    }
    pageToken = page.nextPageToken;
  }
}

/** The entries of every page. */
export async function* entries<Response, Entry>(
  all: AsyncIterable<Response>,
  of: (page: Response) => Entry[],
): AsyncGenerator<Entry> {
  for await (const page of all) {
    yield* of(page);
  }
}
