using ILGPU;
using ILGPU.Runtime.CPU;

namespace MoeSharp.Cuda.Tests;

/// <summary>ILGPU's CPU accelerator starts here, so the kernels can be tested without a GPU.</summary>
public class BackendSmokeTests
{
    [Fact]
    public void CpuAcceleratorStarts()
    {
        using var context = Context.Create(builder => builder.CPU());
        using var accelerator = context.CreateCPUAccelerator(0);
        Assert.NotNull(accelerator);
    }
}
