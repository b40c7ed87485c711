/**
 * The base data a fresh shop starts with, as the seed had it: 200 products,
 * 50 customers and 100 buyers. A customer is a person with an account; a
 * buyer is one of that customer's purchasing profiles (a saved payment method
 * and shipping address: personal, work, gift), one to three per customer.
 * Built from a fixed seed, so every namespace starts from the same shop.
 *
 * @module
 */

import { PAYMENT_METHODS } from "../../lib/contracts.ts";
import { CATALOGUE } from "./catalogue.ts";
import { createPrng } from "./prng.ts";

export interface BaseProduct {
  name: string;
  category: string;
  priceCents: number;
  stock: number;
}

export interface BaseCustomer {
  name: string;
  email: string;
  city: string;
  country: string;
}

/** A buyer row; `customer` is an index into the customers it was made for. */
export interface BaseBuyer {
  customer: number;
  label: string;
  paymentMethod: string;
  shippingCity: string;
}

/** The seed's defaults. */
export const BASE_COUNTS = { customers: 50, buyers: 100, products: 200 } as const;

const BASE_SEED = 20_240_917;

const FIRST_NAMES = [
  "Sofía",
  "Mateo",
  "Valentina",
  "Santiago",
  "Camila",
  "Martín",
  "Lucía",
  "Nicolás",
  "Isabella",
  "Joaquín",
  "Emma",
  "Benjamín",
  "Martina",
  "Tomás",
  "Olivia",
  "Lucas",
  "Julieta",
  "Diego",
  "Catalina",
  "Facundo",
  "Ana",
  "Pablo",
  "Laura",
  "Javier",
  "Carmen",
];
const LAST_NAMES = [
  "García",
  "Rodríguez",
  "González",
  "Fernández",
  "López",
  "Martínez",
  "Sánchez",
  "Pérez",
  "Gómez",
  "Díaz",
  "Romero",
  "Álvarez",
  "Torres",
  "Ruiz",
  "Flores",
  "Suárez",
  "Castro",
  "Vargas",
  "Herrera",
  "Medina",
];
const CITIES: readonly [city: string, country: string][] = [
  ["Buenos Aires", "AR"],
  ["Córdoba", "AR"],
  ["Rosario", "AR"],
  ["Mendoza", "AR"],
  ["Montevideo", "UY"],
  ["Santiago", "CL"],
  ["Lima", "PE"],
  ["Bogotá", "CO"],
  ["Mexico City", "MX"],
  ["Guadalajara", "MX"],
  ["Madrid", "ES"],
  ["Barcelona", "ES"],
  ["Valencia", "ES"],
  ["Miami", "US"],
  ["New York", "US"],
];
const LABELS = ["personal", "work", "gift"] as const;
/** Buyers per customer, cycled: averages 2, so 50 customers carry exactly 100 buyers. */
const BUYERS_PER_CUSTOMER = [2, 1, 3, 2, 2, 1, 2, 3, 2, 2];

/**
 * The base products: the catalogue with a stock level each.
 *
 * @example
 * ```ts
 * import { baseProducts } from "./base_data.ts";
 * baseProducts()[0]!.name; // "iPhone 15"
 * ```
 */
export function baseProducts(): BaseProduct[] {
  const rng = createPrng(BASE_SEED);
  return CATALOGUE.map((p) => ({ ...p, stock: rng.int(20, 500) }));
}

/** The base customers: distinct names, unique e-mails, a home city each. */
export function baseCustomers(count: number = BASE_COUNTS.customers): BaseCustomer[] {
  const rng = createPrng(BASE_SEED + 1);
  const used = new Set<string>();
  const customers: BaseCustomer[] = [];
  for (let i = 0; i < count; i++) {
    let name: string;
    do name = `${rng.pick(FIRST_NAMES)} ${rng.pick(LAST_NAMES)}`; while (
      used.has(name) && used.size < FIRST_NAMES.length * LAST_NAMES.length
    );
    used.add(name);
    const [city, country] = rng.pick(CITIES);
    customers.push({ name, email: emailOf(name, i + 1), city, country });
  }
  return customers;
}

/**
 * Buyers for `customers` customers: the first is always "personal" and ships
 * to the customer's city; "work" and "gift" profiles ship elsewhere and often
 * pay differently.
 */
export function baseBuyers(customers: readonly Pick<BaseCustomer, "city">[]): BaseBuyer[] {
  const rng = createPrng(BASE_SEED + 2);
  const buyers: BaseBuyer[] = [];
  customers.forEach((customer, index) => {
    const count = BUYERS_PER_CUSTOMER[index % BUYERS_PER_CUSTOMER.length]!;
    for (let k = 0; k < count; k++) {
      buyers.push({
        customer: index,
        label: LABELS[k]!,
        paymentMethod: rng.pick(PAYMENT_METHODS),
        shippingCity: k === 0 ? customer.city : rng.pick(CITIES)[0],
      });
    }
  });
  return buyers;
}

function emailOf(name: string, n: number): string {
  const ascii = name.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase().replace(/\s+/g, ".");
  return `${ascii}${n}@example.com`;
}
