import { useState } from 'react'
import { Link } from 'react-router-dom'
import { projectsPath, type Project } from '../../api/projects'
import type { Page } from '../../api/client'
import { ago } from '../../components/format'
import { Empty, Loaded } from '../../components/States'
import { StatusBadge } from '../../components/StatusBadge'
import { useApi } from '../../hooks/useApi'
import { paths } from '../../routes'
import { NewProjectForm } from './NewProjectForm'

const SHOWN = 10
const MY_PROJECTS = projectsPath({ mine: true, ordering: '-activity', page_size: SHOWN })

/** The projects the user has a role on, most recently active first, with their newest job. */
export function MyProjects({ username, teams }: { username: string; teams: string[] }) {
  const projects = useApi<Page<Project>>(MY_PROJECTS)
  const [creating, setCreating] = useState(false)
  return (
    <section className="card" aria-labelledby="my-projects">
      <div className="section-header">
        <h2 id="my-projects">My projects</h2>
        <div className="actions">
          {!creating && (
            <button type="button" className="button small primary" onClick={() => setCreating(true)}>
              New project
            </button>
          )}
        </div>
      </div>
      {creating && <NewProjectForm owners={[username, ...teams]} onCancel={() => setCreating(false)} />}
      <Loaded {...projects} what="Loading your projects">
        {(page) =>
          page.results.length === 0 ? (
            <NoProjects username={username} />
          ) : (
            <>
              <ul className="dashboard-list">
                {page.results.map((project) => (
                  <ProjectItem key={project.id} project={project} />
                ))}
              </ul>
              {page.count > page.results.length && (
                <p className="muted">
                  {page.results.length} of {page.count} projects, most recently active first.
                </p>
              )}
            </>
          )
        }
      </Loaded>
    </section>
  )
}

function ProjectItem({ project }: { project: Project }) {
  const last = project.last_job
  return (
    <li>
      <Link className="name" to={paths.project(project.owner, project.name)}>
        {project.full_name}
      </Link>
      {project.visibility === 'public' && <span className="badge">public</span>}
      <span className="aside">
        {last ? (
          <Link to={paths.job(project.owner, project.name, last.number)} aria-label={`Job #${last.number}: ${last.status}`}>
            <StatusBadge status={last.status} /> #{last.number} · {ago(last.created_at)}
          </Link>
        ) : (
          'no jobs yet'
        )}
      </span>
      {project.description && <span className="description">{project.description}</span>}
    </li>
  )
}

function NoProjects({ username }: { username: string }) {
  return (
    <Empty>
      <div className="getting-started">
        <strong>You have no projects yet.</strong>
        <span>Create one with “New project”, or link a directory of code to a new project and run it:</span>
        <pre>
          <code>{`ferry init ${username}/mnist\nferry run "python train.py"`}</code>
        </pre>
      </div>
    </Empty>
  )
}
