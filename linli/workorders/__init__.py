"""Work orders (报修/投诉/咨询) with SLA clocks, dispatch, technician work and ratings."""
