export function ProjectPage() {
  return <div className="page">ProjectPage</div>
}
