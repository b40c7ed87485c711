/**
 * The shop's activity as a stream of events, made by a pool of concurrent
 * browsing sessions. A session belongs to one customer on one device: it lands
 * on a page, searches with words of the catalogue, views products (often the
 * ones its search found), adds and removes them from its cart, and buys. Each
 * event is a purchase with probability `transactionShare`, otherwise the next
 * step of a session. Pure and seeded: the same shop and seed give the same
 * events, whatever the rate or batching.
 *
 * @module
 */

import { type BehaviorType, PAYMENT_METHODS } from "../../lib/contracts.ts";
import { searchWords } from "./catalogue.ts";
import { createPrng } from "./prng.ts";

export interface ShopProduct {
  id: number;
  name: string;
  category: string;
  priceCents: number;
}
export interface ShopBuyer {
  id: number;
  paymentMethod: string;
}
export interface ShopCustomer {
  id: number;
  /** The customer's buyers, by id; may be empty (then a transaction has no buyer). */
  buyers: ShopBuyer[];
}
/** What the generator knows of the shop, loaded once at start. */
export interface Shop {
  customers: ShopCustomer[];
  products: ShopProduct[];
}

export interface NewItem {
  productId: number;
  quantity: number;
  unitPriceCents: number;
}
/** A purchase: one `transactions` row and its `transaction_details`. */
export interface NewTransaction {
  kind: "transaction";
  customerId: number;
  buyerId: number | null;
  paymentMethod: string;
  status: "completed";
  totalCents: number;
  items: NewItem[];
}
/** One `user_behavior` row. */
export interface NewBehavior {
  kind: "behavior";
  customerId: number;
  sessionId: string;
  eventType: BehaviorType;
  productId: number | null;
  searchQuery: string | null;
  device: string;
}
export type ShopEvent = NewTransaction | NewBehavior;

export interface EventSourceOptions {
  seed: number;
  /** Share of events that are transactions, 0..1 (default 0.7, as the seed). */
  transactionShare?: number;
  /** Sessions browsing at the same time (default 12). */
  sessions?: number;
}

/** An endless, deterministic stream of shop events. */
export interface EventSource {
  next(): ShopEvent;
}

interface Session {
  id: string;
  customer: ShopCustomer;
  device: string;
  interest: string;
  viewed: ShopProduct[];
  results: ShopProduct[];
  cart: Map<ShopProduct, number>;
  steps: number;
  maxSteps: number;
}

const DEVICES = { mobile: 55, desktop: 35, tablet: 10 };
const STEPS = { page_view: 10, search: 20, product_view: 40, add_to_cart: 20, remove_from_cart: 0 };
/** Second thoughts come to those with something in the cart. */
const STEPS_WITH_CART = { ...STEPS, remove_from_cart: 25 };
const ITEMS_PER_PURCHASE = { "1": 50, "2": 30, "3": 15, "4": 5 };
const QUANTITY = { "1": 75, "2": 18, "3": 7 };
const MAX_CART_QUANTITY = 5;
/** Words nobody searches alone. */
const STOP_WORDS = new Set(["the", "a", "an", "of", "to", "and", "with", "in", "for", "de"]);

/**
 * @example
 * ```ts
 * import { createEventSource } from "./session.ts";
 * const shop = {
 *   customers: [{ id: 1, buyers: [{ id: 1, paymentMethod: "paypal" }] }],
 *   products: [{ id: 1, name: "iPhone 15", category: "Electronics", priceCents: 79900 }],
 * };
 * const events = createEventSource(shop, { seed: 7 });
 * events.next().customerId; // 1
 * ```
 */
export function createEventSource(
  shop: Shop,
  { seed, transactionShare = 0.7, sessions: poolSize = 12 }: EventSourceOptions,
): EventSource {
  if (shop.customers.length === 0 || shop.products.length === 0) {
    throw new RangeError(
      `Cannot generate events for a shop without customers or products: current counts are ` +
        `${shop.customers.length} customers, ${shop.products.length} products`,
    );
  }
  const rng = createPrng(seed);
  const byCategory = new Map<string, ShopProduct[]>();
  for (const p of shop.products) {
    const list = byCategory.get(p.category) ?? [];
    list.push(p);
    byCategory.set(p.category, list);
  }
  const categories = [...byCategory.keys()];
  const pool: Session[] = Array.from({ length: poolSize }, newSession);

  function newSession(): Session {
    return {
      id: `sess-${rng.hex(12)}`,
      customer: rng.pick(shop.customers),
      device: rng.weighted(DEVICES),
      interest: rng.pick(categories),
      viewed: [],
      results: [],
      cart: new Map(),
      steps: 0,
      maxSteps: rng.int(2, 12),
    };
  }

  function next(): ShopEvent {
    if (rng.chance(transactionShare)) {
      return purchase(pool[purchaseSlot()]!);
    }
    const slot = rng.int(0, pool.length - 1);
    const session = pool[slot]!;
    const event = browse(session);
    session.steps++;
    if (session.steps >= session.maxSteps) pool[slot] = newSession();
    return event;
  }

  /** Sessions with a cart check out more often than the others. */
  function purchaseSlot(): number {
    const slot = rng.int(0, pool.length - 1);
    if (pool[slot]!.cart.size > 0 || !rng.chance(0.15)) return slot;
    const withCart = pool.findIndex((s) => s.cart.size > 0);
    return withCart === -1 ? slot : withCart;
  }

  /** A checkout of the cart, or a "buy now" that leaves the cart as it is. */
  function purchase(session: Session): NewTransaction {
    let lines: [ShopProduct, number][];
    if (session.cart.size > 0 && rng.chance(0.2)) {
      lines = [...session.cart];
      session.cart.clear();
    } else {
      lines = buyNow(session);
    }
    const items = lines.map(([p, quantity]) => ({
      productId: p.id,
      quantity,
      unitPriceCents: p.priceCents,
    }));
    const { buyers } = session.customer;
    const buyer = buyers.length === 0 ? null : rng.chance(0.7) ? buyers[0]! : rng.pick(buyers);
    return {
      kind: "transaction",
      customerId: session.customer.id,
      buyerId: buyer?.id ?? null,
      paymentMethod: buyer?.paymentMethod ?? rng.pick(PAYMENT_METHODS),
      status: "completed",
      totalCents: items.reduce((sum, i) => sum + i.quantity * i.unitPriceCents, 0),
      items,
    };
  }

  /** A purchase without a cart: products the session looked at, or of its interest. */
  function buyNow(session: Session): [ShopProduct, number][] {
    const wanted = Number(rng.weighted(ITEMS_PER_PURCHASE));
    const chosen = new Map<ShopProduct, number>();
    for (let tries = 0; chosen.size < wanted && tries < wanted * 4; tries++) {
      const product = session.viewed.length > 0 && rng.chance(0.6)
        ? rng.pick(session.viewed)
        : productOfInterest(session);
      if (!chosen.has(product)) chosen.set(product, Number(rng.weighted(QUANTITY)));
    }
    return [...chosen];
  }

  function browse(session: Session): NewBehavior {
    let type: BehaviorType = session.steps === 0
      ? "page_view"
      : rng.weighted(session.cart.size > 0 ? STEPS_WITH_CART : STEPS);
    if (type === "add_to_cart" && session.viewed.length === 0) type = "product_view";
    if (type === "remove_from_cart" && session.cart.size === 0) type = "product_view";
    let product: ShopProduct | null = null;
    let query: string | null = null;
    switch (type) {
      case "page_view":
        if (rng.chance(0.3)) session.interest = rng.pick(categories);
        break;
      case "search": {
        const target = productOfInterest(session);
        query = queryFor(target);
        session.interest = target.category;
        const related = byCategory.get(target.category)!;
        session.results = [target, ...Array.from({ length: 3 }, () => rng.pick(related))];
        break;
      }
      case "product_view":
        product = session.results.length > 0 && rng.chance(0.6)
          ? rng.pick(session.results)
          : productOfInterest(session);
        session.viewed.push(product);
        if (session.viewed.length > 10) session.viewed.shift();
        break;
      case "add_to_cart":
        product = rng.chance(0.7) ? session.viewed.at(-1)! : rng.pick(session.viewed);
        session.cart.set(
          product,
          Math.min((session.cart.get(product) ?? 0) + 1, MAX_CART_QUANTITY),
        );
        break;
      case "remove_from_cart":
        product = rng.pick([...session.cart.keys()]);
        session.cart.delete(product);
        break;
    }
    return {
      kind: "behavior",
      customerId: session.customer.id,
      sessionId: session.id,
      eventType: type,
      productId: product?.id ?? null,
      searchQuery: query,
      device: session.device,
    };
  }

  function productOfInterest(session: Session): ShopProduct {
    return rng.chance(0.8) ? rng.pick(byCategory.get(session.interest)!) : rng.pick(shop.products);
  }

  /** What a shopper types: a brand or model, a telling word, a category, or the full name. */
  function queryFor(product: ShopProduct): string {
    const words = searchWords(product.name).filter((w) => !STOP_WORDS.has(w));
    if (words.length === 0) return searchWords(`${product.name} ${product.category}`).join(" ");
    const style = rng.weighted({ brand: 40, word: 30, category: 20, name: 10 });
    if (style === "brand") return words.slice(0, rng.int(1, Math.min(2, words.length))).join(" ");
    if (style === "word") {
      const telling = words.slice(1).filter((w) => w.length >= 3 && !/^\d+$/.test(w));
      return telling.length > 0 ? rng.pick(telling) : words[0]!;
    }
    if (style === "category") return searchWords(product.category).join(" ");
    return searchWords(product.name).join(" ");
  }

  return { next };
}
