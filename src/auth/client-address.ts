import type { NextFunction, Request, Response } from 'express';

declare module 'express-serve-static-core' {
  interface Request {
    /**
     * The address the request came from, read once when it arrived: the socket is gone by the
     * time an aborted or refused upload's `finish`/`close` listeners run (`req.socket` is null
     * then), so nothing later reads the socket. With `trust proxy` set (TRUST_PROXY), Express's
     * `req.ip` is the client address the trusted proxies forwarded (X-Forwarded-For).
     */
    clientAddress?: string;
  }
}

/** The first middleware: remembers where the request came from (see `clientAddress`). */
export function captureClientAddress() {
  return (req: Request, _res: Response, next: NextFunction): void => {
    req.clientAddress = addressOf(req);
    next();
  };
}

/** The request's address as captured on arrival; `unknown` when it could not be read. */
export function clientAddress(req: Request): string {
  return req.clientAddress ?? 'unknown';
}

function addressOf(req: Request): string {
  try {
    return req.ip ?? req.socket?.remoteAddress ?? 'unknown';
  } catch {
    // The socket was already closed when the request was handed over.
    return 'unknown';
  }
}
