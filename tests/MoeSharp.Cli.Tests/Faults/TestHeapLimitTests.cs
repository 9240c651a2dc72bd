using MoeSharp.Tensors;

namespace MoeSharp.Tests.Faults;

/// <summary>
/// The test process's GC heap is capped at 64 GiB (the project's <c>System.GC.HeapHardLimit</c>), so the memory
/// refusals the in-process CLI tests expect do not depend on how much memory the machine has.
/// </summary>
public class TestHeapLimitTests
{
    [Fact]
    public void AvailableHostMemory_IsAtMostTheTestHeapCap()
    {
        Assert.Equal(64L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, tolerance: 1L << 30);
        Assert.True(MemoryBudget.AvailableHostBytes() <= 64L << 30);
    }
}
