// Every page's address, built in one place: each view has a link that can be shared, and the
// links between pages agree with the router in App.tsx.

const seg = encodeURIComponent

export const paths = {
  dashboard: () => '/',
  login: (next?: string) => (next && next !== '/' ? `/login?next=${seg(next)}` : '/login'),
  signup: () => '/signup',
  project: (owner: string, project: string) => `/${seg(owner)}/projects/${seg(project)}`,
  job: (owner: string, project: string, number: number | string, tab?: string) =>
    `/${seg(owner)}/projects/${seg(project)}/${number}${tab ? `?tab=${seg(tab)}` : ''}`,
  compare: (owner: string, project: string, numbers: (number | string)[]) =>
    `/${seg(owner)}/projects/${seg(project)}/compare?jobs=${numbers.join(',')}`,
  datasets: () => '/datasets',
  dataset: (owner: string, dataset: string) => `/${seg(owner)}/datasets/${seg(dataset)}`,
  version: (owner: string, dataset: string, version: number | string, path = '') =>
    `/${seg(owner)}/datasets/${seg(dataset)}/${version}${path ? `?path=${seg(path)}` : ''}`,
  tokens: () => '/settings/tokens',
  teams: () => '/settings/teams',
  team: (team: string) => `/settings/teams/${seg(team)}`,
}
