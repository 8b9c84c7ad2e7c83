// The graph canvas both the builder and the run page draw: @xyflow/react with the step nodes, fitted to its box.
import { Background, Controls, ReactFlow, type Connection, type Edge, type NodeMouseHandler } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { nodeTypes, type StepNodeType } from "./StepNode";

export function Graph({ nodes, edges, label, onNodeClick, onConnect, onEdgesDelete, editable = false }: {
  nodes: StepNodeType[];
  edges: Edge[];
  label: string;
  onNodeClick?: (id: string) => void;
  onConnect?: (connection: Connection) => void;
  onEdgesDelete?: (edges: Edge[]) => void;
  editable?: boolean;
}) {
  const click: NodeMouseHandler<StepNodeType> = (_, node) => onNodeClick?.(node.id);
  return (
    <div className="graph" role="region" aria-label={label}>
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodeClick={click}
        onConnect={onConnect}
        onEdgesDelete={onEdgesDelete}
        edgesFocusable={editable}
        deleteKeyCode={editable ? ["Backspace", "Delete"] : null}
        nodesDraggable={false}
        nodesConnectable={editable}
        elementsSelectable
        fitView
        fitViewOptions={{ padding: 0.15 }}
        minZoom={0.2}
      >
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
