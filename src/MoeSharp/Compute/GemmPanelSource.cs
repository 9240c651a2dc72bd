namespace MoeSharp.Compute;

/// <summary>
/// One operand of a <see cref="HostGemm"/> product seen as the micro-kernel's panels: A as panels of
/// <see cref="GemmMicroKernel.MR"/> rows, B as panels of <see cref="GemmMicroKernel.NR"/> columns. Line <c>l</c> (a row
/// of A, a column of B) at reduction step <c>p</c> is <c>source[l·lineStride + p·stepStride]</c>, for
/// <c>l &lt; lines</c>.
/// </summary>
internal readonly unsafe struct GemmPanelSource(float* source, long lineStride, long stepStride, int lines, int width)
{
    /// <summary>
    /// Lines per panel: <see cref="GemmMicroKernel.MR"/> for A, <see cref="GemmMicroKernel.NR"/> for B.
    /// </summary>
    public int Width => width;

    /// <summary>Packs steps <c>[p0, p0+depth)</c> of panel <paramref name="panel"/> into <c>[step][Width]</c> order,
    /// zero-padding the lines past the operand's last.</summary>
    public void Pack(int panel, int p0, int depth, float* destination)
    {
        int first = panel * width;
        GemmMicroKernel.PackPanel(
            source,
            lineStride,
            stepStride,
            first,
            Math.Min(width, lines - first),
            p0,
            depth,
            destination,
            width
        );
    }

    /// <summary>
    /// Packs steps <c>[p0, p0+depth)</c> of every panel in <paramref name="panels"/> into the matching
    /// <paramref name="destinations"/>. Where a step's lines are contiguous (B given as <c>[K, N]</c>, A as
    /// <c>[K, M]</c>) the whole panels go through <see cref="GemmMicroKernel.PackContiguousPanels"/> together, reading
    /// the source row by row; a partial last panel, and the other layouts, panel by panel.
    /// </summary>
    public void PackAll(ReadOnlySpan<int> panels, ReadOnlySpan<nint> destinations, int p0, int depth)
    {
        if (lineStride != 1 || stepStride == 1)
        {
            for (int i = 0; i < panels.Length; i++)
                Pack(panels[i], p0, depth, (float*)destinations[i]);
            return;
        }
        int partial = lines % Width == 0 ? -1 : panels.IndexOf(lines / Width);
        if (partial < 0)
        {
            PackWhole(panels, destinations, p0, depth);
            return;
        }
        PackWhole(panels[..partial], destinations[..partial], p0, depth);
        PackWhole(panels[(partial + 1)..], destinations[(partial + 1)..], p0, depth);
        Pack(panels[partial], p0, depth, (float*)destinations[partial]);
    }

    private void PackWhole(ReadOnlySpan<int> panels, ReadOnlySpan<nint> destinations, int p0, int depth)
    {
        if (panels.Length > 0)
        {
            GemmMicroKernel.PackContiguousPanels(
                source + (p0 * stepStride),
                stepStride,
                Width,
                panels,
                destinations,
                depth
            );
        }
    }
}
